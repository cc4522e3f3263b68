"""Wrong input on the command line and hostile text on the terminal: one line, no traceback,
nothing written for a request that cannot make a report."""

from __future__ import annotations

import pytest

from etl_lib import cli
from etl_lib.cli import output
from etl_lib.cli.demo import DEMO_PLAYLIST, run_demo
from etl_lib.config import Settings
from etl_lib.errors import ConfigError
from etl_lib.lake import storage
from etl_lib.reporting import reports

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
        (["--days", "100000000"], "is more than 3660 days"),
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
    before = sorted(storage.list_keys(small_lake, f"{reports.REPORTS}/"))
    code, err = _run(["report", "--lake", small_lake, *arguments], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert expected in lines[-1], err
    assert "Traceback" not in err
    # No kernel ran: no failed report for a date without a chart, no index entry for it.
    assert sorted(storage.list_keys(small_lake, f"{reports.REPORTS}/")) == before


def test_a_report_for_a_date_with_a_chart_still_runs(small_lake, capsys):
    code, err = _run(["report", "--lake", small_lake, "--as-of", "2026-10-30"], capsys)
    assert code == 0, err
    assert storage.exists(small_lake, f"{reports.REPORTS}/{DEMO_PLAYLIST}/2026-10-30/report.html")


@pytest.mark.parametrize(
    ("days", "expected"),
    [("0", "'0' is not a positive whole number"), ("800000", "'800000' is more than 3660 days")],
)
def test_demo_refuses_impossible_days_in_one_line(tmp_path, capsys, days, expected):
    code, err = _run(["demo", "--lake", str(tmp_path / "lake"), "--days", days], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1].endswith(expected)
    assert not (tmp_path / "lake").exists()


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
    assert output.terminal_safe(text) == shown


def test_an_error_naming_hostile_text_reaches_the_terminal_escaped(small_lake, capsys):
    statement = 'SELECT "a\x1b]0;x\x07b" FROM snapshots'  # the error names the column
    code, err = _run(["query", "--lake", small_lake, statement], capsys)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;x\\x07" in err


@pytest.mark.parametrize(
    ("output_format", "on_terminal", "as_data"),
    [
        ("csv", "\\x1b]0;x\\x07\\x9b", "\x1b]0;x\x07\x9b"),
        # JSON escapes C0 controls itself; C1 ones (0x9b starts a terminal sequence) it keeps.
        ("json", "\\u001b]0;x\\u0007\\x9b", "\\u001b]0;x\\u0007\x9b"),
    ],
)
def test_csv_and_json_on_a_terminal_show_control_characters_as_escapes(
    small_lake, capsys, monkeypatch, output_format, on_terminal, as_data
):
    statement = "SELECT chr(27) || ']0;x' || chr(7) || chr(155) AS name"
    command = ["query", "--lake", small_lake, "--format", output_format, statement]
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert cli.main(command) == 0
    shown = capsys.readouterr().out
    assert on_terminal in shown
    assert not any(char in shown for char in "\x1b\x07\x9b")
    # To a file or a pipe they are data, written as they are.
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert cli.main(command) == 0
    assert as_data in capsys.readouterr().out


@pytest.mark.parametrize("name", ["SPOTIFY_ETL_RATE_LIMIT_BUDGET", "SPOTIFY_ETL_HTTP_DEADLINE"])
@pytest.mark.parametrize("text", ["nan", "inf", "-1", "soon"])
def test_a_time_bound_from_the_environment_must_be_a_finite_number(name, text):
    # nan compares false with everything: a budget of nan would let any Retry-After be slept.
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: text})
