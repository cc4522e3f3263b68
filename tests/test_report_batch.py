"""Reports of many playlists in one run: their queries all at once before any notebook, the
notebooks one after another in one kernel, each report published as a run of its own would
publish it, and a failure failing its own playlist only."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest

from etl_lib.cli.demo import DEMO_LAST_DAY, DEMO_PLAYLISTS, run_demo
from etl_lib.errors import ConfigError
from etl_lib.lake import storage
from etl_lib.reporting import reports
from etl_lib.warehouse import execute, sql

AS_OF = DEMO_LAST_DAY.date().isoformat()
DAYS = 7
# A Spotify ID the demo lake holds nothing of.
NOT_IN_LAKE = "0123456789abcdefghijkl"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("batch") / "lake")
    run_demo(root, days=DAYS)
    return root


@pytest.fixture
def kernel_starts(monkeypatch) -> list[str]:
    """Every kernel a report run starts, counted as its manager starts it."""
    started: list[str] = []
    private_manager = reports._private_kernel_manager

    def counting_manager(folder):
        manager = private_manager(folder)

        class CountingManager(manager):
            async def start_kernel(self, **kwargs):
                started.append(str(folder))
                await super().start_kernel(**kwargs)

        return CountingManager

    monkeypatch.setattr(reports, "_private_kernel_manager", counting_manager)
    return started


def _published(lake_root: str, result: reports.ReportResult, folder: str) -> dict[str, bytes]:
    return {
        name: storage.read_bytes(lake_root, f"{result.output_prefix}/{name}")
        for name in result.files
        if name.startswith(f"{folder}/")
    }


@pytest.mark.slow
def test_one_run_publishes_every_report_as_runs_of_their_own_would(
    lake, kernel_starts, monkeypatch
):
    alone = {
        playlist_id: reports.run_report(lake, playlist_id=playlist_id, as_of=AS_OF, days=DAYS)
        for playlist_id in DEMO_PLAYLISTS
    }
    assert all(result.succeeded for result in alone.values())
    assert len(kernel_starts) == len(DEMO_PLAYLISTS)  # a kernel each
    tables_alone = {p: _published(lake, r, "tables") for p, r in alone.items()}
    charts_alone = {p: _published(lake, r, "charts") for p, r in alone.items()}
    kernel_starts.clear()

    # Every statement the run queries, and the results it handed to the notebooks, marked so
    # that a report showing the mark proves its notebook did not query them again.
    queried: list[object] = []
    query_all = execute.query_all

    def counting_query_all(lake_root, statements, **kwargs):
        queried.extend(statements)
        return query_all(lake_root, statements, **kwargs)

    query_inputs = reports.query_inputs
    handed: list[str] = []

    def marked_inputs(*args, **kwargs):
        assert not kernel_starts, "the reports' queries run before any kernel starts"
        inputs = query_inputs(*args, **kwargs)
        for playlist_id, frames in inputs.items():
            frames["freshness"] = frames["freshness"].assign(playlist_name=f"Batch {playlist_id}")
            handed.append(playlist_id)
        return inputs

    monkeypatch.setattr(execute, "query_all", counting_query_all)
    monkeypatch.setattr(reports, "query_inputs", marked_inputs)
    announced: list[reports.ReportResult] = []
    results = reports.run_reports(
        lake, dict.fromkeys(DEMO_PLAYLISTS, AS_OF), days=DAYS, announce=announced.append
    )

    assert len(kernel_starts) == 1
    assert announced == results
    assert [r.playlist_id for r in results] == [*DEMO_PLAYLISTS, None]  # the comparison last
    assert all(result.succeeded for result in results), [r.status for r in results]
    assert results[-1].output_prefix == reports.comparison_prefix(AS_OF)
    # The reports' queries ran once, one statement each for every playlist, all of them in
    # one call before the notebooks.
    assert handed == list(DEMO_PLAYLISTS)
    report_statements = [key for key in queried if isinstance(key, tuple)]
    expected = [(tuple(DEMO_PLAYLISTS), name) for name in reports.INPUT_NAMES]
    assert sorted(report_statements) == sorted(expected)
    for playlist_id, result in zip(DEMO_PLAYLISTS, results, strict=False):
        assert result.output_prefix == alone[playlist_id].output_prefix
        assert _published(lake, result, "tables") == tables_alone[playlist_id]
        assert _published(lake, result, "charts") == charts_alone[playlist_id]
        page = storage.read_bytes(lake, f"{result.output_prefix}/report.html").decode()
        assert f"Batch {playlist_id}" in page  # the notebook showed the results handed to it
        notebook = json.loads(storage.read_bytes(lake, f"{result.output_prefix}/report.ipynb"))
        counts = [c["execution_count"] for c in notebook["cells"] if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1))  # numbered as in a kernel of its own
    index = storage.read_bytes(lake, reports.INDEX).decode()
    assert all(f"Batch {playlist_id}" in index for playlist_id in DEMO_PLAYLISTS)


def _notebook_failing_for(tmp_path, failures: dict[str, str]):
    """The report notebook with a cell, after its first, that runs ``failures[playlist_id]``
    for those playlists; the index of that cell in the executed notebook."""
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    source = "\n".join(
        f"if playlist_id == {playlist_id!r}:\n    {code}" for playlist_id, code in failures.items()
    )
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
    notebook["cells"].insert(2, cell | {"source": [source]})
    path = tmp_path / "failing.ipynb"
    path.write_text(json.dumps(notebook))
    return path, 3  # papermill's injected parameters come after the first cell


@pytest.mark.slow
def test_a_request_or_notebook_that_fails_fails_its_playlist_alone(lake, kernel_starts, tmp_path):
    raising, dying, fine = DEMO_PLAYLISTS
    notebook, failing_index = _notebook_failing_for(
        tmp_path,
        {
            raising: "raise RuntimeError('inconsistent chart')",
            dying: "import os; os._exit(1)",
        },
    )
    wanted = {
        raising: AS_OF,
        "not a playlist": AS_OF,
        dying: AS_OF,
        NOT_IN_LAKE: AS_OF,
        fine: AS_OF,
    }
    results = reports.run_reports(lake, wanted, days=DAYS, notebook=notebook, comparison=False)
    by_playlist = {result.playlist_id: result for result in results}
    assert set(by_playlist) == set(wanted)

    # Requests the lake cannot answer publish nothing and say why, in one line.
    for refused in ("not a playlist", NOT_IN_LAKE):
        result = by_playlist[refused]
        assert not result.succeeded and isinstance(result.refused, ConfigError)
        assert result.files == [] and "\n" not in result.error
        assert not list(storage.list_keys(lake, f"{reports.REPORTS}/{refused}"))
    assert NOT_IN_LAKE in by_playlist[NOT_IN_LAKE].error

    # A cell that raised is named in the failed run's status.json, as papermill reports it.
    failed = by_playlist[raising]
    assert not failed.succeeded and "/failed/" in failed.output_prefix
    assert failed.error == "RuntimeError: inconsistent chart"
    status = json.loads(storage.read_bytes(lake, f"{failed.output_prefix}/status.json"))
    assert status["failing_cell"]["index"] == failing_index
    assert "inconsistent chart" in status["failing_cell"]["source"]

    died = by_playlist[dying]
    assert not died.succeeded and "kernel died" in died.error

    # The kernel that died was replaced, and the next playlist published its report.
    assert by_playlist[fine].succeeded, by_playlist[fine].status
    assert by_playlist[fine].output_prefix == reports.report_prefix(fine, AS_OF)
    assert len(kernel_starts) == 2

    # run_report, a run of one, raises a refusal as before.
    with pytest.raises(ConfigError, match=NOT_IN_LAKE):
        reports.run_report(lake, playlist_id=NOT_IN_LAKE, as_of=AS_OF, days=DAYS)


def test_requests_are_checked_with_one_query_of_the_tables(lake, monkeypatch):
    """However many playlists are asked for: one query of the tables, and the raw zone listed
    once (its folder, then each playlist's), not once per request."""
    statements: list[str] = []
    listed: list[str] = []
    run, list_folders = execute.run, storage.list_folders

    def counting_run(lake_root, statement, *args, **kwargs):
        statements.append(statement)
        return run(lake_root, statement, *args, **kwargs)

    def counting_list_folders(lake_root, prefix, *args, **kwargs):
        listed.append(prefix)
        return list_folders(lake_root, prefix, *args, **kwargs)

    monkeypatch.setattr(execute, "run", counting_run)
    monkeypatch.setattr(storage, "list_folders", counting_list_folders)
    checked = reports.check_requests(
        lake, {**dict.fromkeys(DEMO_PLAYLISTS, AS_OF), NOT_IN_LAKE: AS_OF}, DAYS
    )
    assert [checked[p] for p in DEMO_PLAYLISTS] == [AS_OF] * len(DEMO_PLAYLISTS)
    assert isinstance(checked[NOT_IN_LAKE], ConfigError)
    assert len(statements) == 1
    assert len(listed) == 1 + len(DEMO_PLAYLISTS)  # raw/, then each playlist's folder


def _statements() -> dict[str, str]:
    """The statement of each of the report's inputs, by name (``reports.INPUT_NAMES``): its
    queries', then its follow-ups' lookups."""
    queries = reports.input_queries(DEMO_PLAYLISTS[0], AS_OF, DAYS)
    return {name: statement for name, (statement, _) in queries.items()} | {
        name: sql.shipped("queries")[follow_up.lookup]
        for name, follow_up in reports.FOLLOW_UPS.items()
    }


def test_athena_queries_go_together_but_never_more_than_the_bound(monkeypatch):
    in_flight, most = 0, 0
    lock = threading.Lock()
    submitted: list[tuple[str, str]] = []
    follow_up_statements = {_statements()[name] for name in reports.FOLLOW_UPS}

    def fake_run(lake_root, statement, params, *, engine, settings):
        """Each statement answers one row per id it binds first, every id column holding it
        (so a playlist's #1 and leading artist are ids of its own); the follow-ups of
        playlist "c" fail."""
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            submitted.append((statement, params[0]))
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        covered = params[0].split(",")
        if "broken" in covered or ("c" * 22 in covered and statement in follow_up_statements):
            raise ConfigError("query failed: TABLE_NOT_FOUND")
        ids = dict.fromkeys(["playlist_id", "track_id", "artist_id"], covered)
        return pd.DataFrame({**ids, "statement": statement}), 10

    monkeypatch.setattr(execute, "run", fake_run)
    # Two playlists on one day share their statements; the others, on other days, have their
    # own.
    wanted = {"a" * 22: AS_OF, "broken": AS_OF, "b" * 22: "2026-10-30", "c" * 22: "2026-10-29"}
    inputs = reports.query_inputs("s3://lake", wanted, DAYS, engine="athena")

    assert most == reports.ATHENA_CONCURRENT_QUERIES
    # A statement that fails fails every playlist it covered, and those alone; the reports
    # of a failed query are not followed up on.
    assert isinstance(inputs["broken"], ConfigError)
    assert isinstance(inputs["a" * 22], ConfigError)
    assert isinstance(inputs["c" * 22], ConfigError)
    follow_ups = [ids for statement, ids in submitted if statement in follow_up_statements]
    assert sorted(follow_ups) == sorted(["b" * 22, "c" * 22] * len(reports.FOLLOW_UPS))
    frames = inputs["b" * 22]
    assert list(frames) == list(reports.INPUT_NAMES)
    for name, statement in _statements().items():
        assert frames[name].to_dict("list") == {
            "playlist_id": ["b" * 22],
            "track_id": ["b" * 22],
            "artist_id": ["b" * 22],
            "statement": [statement],
        }, name


def test_the_reports_of_one_day_run_one_statement_per_query_for_all_playlists(lake, statements_run):
    day_before = (DEMO_LAST_DAY.date() - timedelta(days=1)).isoformat()
    late, *others = DEMO_PLAYLISTS
    wanted = {**dict.fromkeys(others, AS_OF), late: day_before}
    alone = {p: reports.query_inputs(lake, {p: as_of}, DAYS)[p] for p, as_of in wanted.items()}

    statements_run.clear()  # from here on: the run of all of them
    inputs = reports.query_inputs(lake, wanted, DAYS)
    ran = statements_run

    # Each query, and each follow-up, once for the playlists of AS_OF, once for the one of
    # the day before.
    statements = _statements()
    assert Counter(statement for statement, _ in ran) == dict.fromkeys(statements.values(), 2)
    queried = {statement for name, statement in statements.items() if name in reports.QUERY_NAMES}
    covered = sorted({params[0] for statement, params in ran if statement in queried})
    assert covered == sorted([",".join(others), late])
    for name, follow_up in reports.FOLLOW_UPS.items():
        # The ids of the playlists of one day, each once.
        bound = sorted(params[0] for statement, params in ran if statement == statements[name])
        ids_of = {p: inputs[p][follow_up.of][follow_up.key].iloc[0] for p in wanted}
        assert bound == sorted([",".join(dict.fromkeys(ids_of[p] for p in others)), ids_of[late]])
    for playlist_id in wanted:
        assert list(inputs[playlist_id]) == list(reports.INPUT_NAMES)
        for name, frame in inputs[playlist_id].items():
            pd.testing.assert_frame_equal(frame, alone[playlist_id][name], obj=name)
            if name in reports.QUERY_NAMES:
                assert set(frame["playlist_id"]) <= {playlist_id}
        assert len(inputs[playlist_id]["chart"]) > 0
        for name, follow_up in reports.FOLLOW_UPS.items():
            followed = inputs[playlist_id][follow_up.of][follow_up.key].iloc[0]
            assert set(inputs[playlist_id][name][follow_up.key]) == {followed}, name


def test_the_reports_of_one_day_send_athena_one_query_per_query_name(
    lake, moto_endpoint, monkeypatch
):
    """On the Athena path (moto, each query answered by DuckDB over the demo lake): one
    submission per query, and per follow-up, for every playlist, split into what DuckDB
    gives each."""
    import boto3
    from moto.athena.models import AthenaBackend

    from bench import cost
    from etl_lib.config import Settings

    def answer(query_id: str, statement: str, values: list) -> pd.DataFrame:
        return execute.query(lake, statement, values)

    start = AthenaBackend.start_query_execution
    monkeypatch.setattr(
        AthenaBackend, "start_query_execution", cost.answering_athena(start, answer)
    )
    boto3.client("s3").create_bucket(Bucket="reports-lake")
    settings = Settings(lake="s3://reports-lake/lake", aws_region="us-east-1")
    wanted = dict.fromkeys(DEMO_PLAYLISTS, AS_OF)

    inputs = reports.query_inputs(settings.lake, wanted, DAYS, engine="athena", settings=settings)

    submitted = boto3.client("athena").list_query_executions()["QueryExecutionIds"]
    assert len(submitted) == len(reports.INPUT_NAMES)
    on_duckdb = reports.query_inputs(lake, wanted, DAYS)
    for playlist_id in DEMO_PLAYLISTS:
        for name, frame in inputs[playlist_id].items():
            expected = on_duckdb[playlist_id][name]
            assert list(frame.columns) == list(expected.columns), name
            for column in {"playlist_id", "track_id", "artist_id"} & set(expected.columns):
                assert frame[column].tolist() == expected[column].tolist(), (name, column)
            assert list(frame.index) == list(range(len(frame))), name


def test_load_inputs_takes_the_results_handed_to_it_once(lake, tmp_path):
    frames = reports.load_inputs(lake, DEMO_PLAYLISTS[0], AS_OF, DAYS)
    folder = tmp_path / "inputs"
    folder.mkdir()
    marked = {**frames, "labels": frames["labels"].head(1)}
    for name, frame in marked.items():
        frame.to_parquet(folder / f"{name}.parquet")

    reports.preload_inputs(str(folder), lake, DEMO_PLAYLISTS[0], AS_OF, DAYS, "duckdb")
    handed = reports.load_inputs(lake, DEMO_PLAYLISTS[0], AS_OF, DAYS)
    assert len(handed["labels"]) == 1
    for name in frames:
        pd.testing.assert_frame_equal(handed[name], marked[name])
    # Taken once: the next call (a cell run again by hand) queries the lake.
    assert len(reports.load_inputs(lake, DEMO_PLAYLISTS[0], AS_OF, DAYS)["labels"]) > 1


def test_reports_not_started_when_the_time_is_up_are_deferred_and_publish_nothing(lake):
    """A run asked to stop (a Lambda function's time running short) starts no new notebook:
    the reports left come back deferred, with nothing published, and no comparison yet."""
    first, *others = DEMO_PLAYLISTS
    day_before = (DEMO_LAST_DAY.date() - timedelta(days=1)).isoformat()
    asked = []

    def time_is_up() -> bool:
        asked.append(True)
        return len(asked) > 1  # time for the first report only

    results = reports.run_reports(
        lake, dict.fromkeys(DEMO_PLAYLISTS, day_before), days=DAYS, time_is_up=time_is_up
    )
    assert [r.playlist_id for r in results] == list(DEMO_PLAYLISTS)  # no comparison
    assert results[0].succeeded and not results[0].deferred
    assert [r.deferred for r in results[1:]] == [True] * len(others)
    for result, playlist_id in zip(results[1:], others, strict=True):
        assert result.files == [] and result.status["parameters"]["as_of"] == day_before
        prefix = reports.report_prefix(playlist_id, day_before)
        assert not storage.exists(lake, f"{prefix}/status.json")
    assert not storage.exists(lake, f"{reports.comparison_prefix(day_before)}/status.json")
