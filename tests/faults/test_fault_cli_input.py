"""Wrong input on the command line and hostile text on the terminal: one line, no traceback,
nothing written for a request that cannot make a report."""

from __future__ import annotations

import pytest

from etl_lib import cli, lake, reports
from etl_lib.demo import DEMO_PLAYLIST, run_demo

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("cli-input") / "lake")
    run_demo(root, days=5)
    return root


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse refuses the arguments themselves
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--days", "0"], "not a positive whole number"),
        (["--days", "-3"], "not a positive whole number"),
        (["--days", "100000000"], "from 1 to 3660"),
        (["--as-of", "0001-01-01"], "outside 1900-01-01..2100-12-31"),
        (["--as-of", "2026-13-01"], "is not a date"),
        (["--as-of", "2099-01-01"], "its charts run from 2026-10-27 to 2026-10-31"),
        (["--as-of", "2026-09-01"], "its charts run from 2026-10-27 to 2026-10-31"),
        (["--playlist", "37i9dQZEVXbNG2KDcFcKOF\n"], "is not a Spotify ID"),
        (["--playlist", "37i9dQZEVXbMDoHDwVN2tF"], "no chart data for playlist"),
    ],
)
def test_a_report_request_that_cannot_make_a_report_says_why_and_writes_nothing(
    small_lake, arguments, expected, capsys
):
    before = sorted(lake.list_keys(small_lake, f"{reports.REPORTS}/"))
    code, err = _run(["report", "--lake", small_lake, *arguments], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert expected in lines[-1], err
    assert "Traceback" not in err
    # No kernel ran: no failed report for a date without a chart, no index entry for it.
    assert sorted(lake.list_keys(small_lake, f"{reports.REPORTS}/")) == before


def test_a_report_for_a_date_with_a_chart_still_runs(small_lake, capsys):
    code, err = _run(["report", "--lake", small_lake, "--as-of", "2026-10-30"], capsys)
    assert code == 0, err
    assert lake.exists(small_lake, f"{reports.REPORTS}/{DEMO_PLAYLIST}/2026-10-30/report.html")


def test_demo_refuses_zero_days_in_one_line(tmp_path, capsys):
    code, err = _run(["demo", "--lake", str(tmp_path / "lake"), "--days", "0"], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1].endswith("'0' is not a positive whole number")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("title\x1b]0;pwned\x07 set", "title\\x1b]0;pwned\\x07 set"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("abc\u202edcba", "abc\\u202edcba"),  # a bidi override would reorder the line
        ("Mañana · 漢字 · 한국어", "Mañana · 漢字 · 한국어"),
        ("two\nlines\tand a tab", "two\nlines\tand a tab"),
    ],
)
def test_terminal_output_shows_control_characters_as_escapes(text, shown):
    assert cli.terminal_safe(text) == shown


def test_an_error_naming_hostile_text_reaches_the_terminal_escaped(small_lake, capsys):
    statement = 'SELECT "a\x1b]0;x\x07b" FROM snapshots'  # the error names the column
    code, err = _run(["query", "--lake", small_lake, statement], capsys)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;x\\x07" in err
