"""Notebooks: committed clean, executed by papermill on demo data, served by JupyterLab."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import requests

from etl_lib.cli.demo import DEMO_PLAYLIST, run_demo
from etl_lib.lake import storage
from etl_lib.reporting import reports

ROOT = Path(__file__).resolve().parents[1]
# JupyterLab keeps autosaved copies, with outputs, in .ipynb_checkpoints/ (ignored by git).
REPORT_NOTEBOOKS = ROOT / "etl_lib" / "reporting" / "notebooks"
NOTEBOOKS = sorted(
    path
    for folder in (ROOT / "notebooks", REPORT_NOTEBOOKS)
    for path in folder.rglob("*.ipynb")
    if ".ipynb_checkpoints" not in path.relative_to(ROOT).parts
)
AS_OF = "2026-10-31"


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("notebooks") / "lake")
    run_demo(root, days=30)
    return root


def test_the_notebooks_exist():
    names = {path.relative_to(ROOT).as_posix() for path in NOTEBOOKS}
    assert {
        "notebooks/explore_top_songs.ipynb",
        "etl_lib/reporting/notebooks/top_songs_trends.ipynb",
        "etl_lib/reporting/notebooks/compare_charts.ipynb",
    } <= names


def _git(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )


def _in_a_git_checkout() -> bool:
    try:
        return _git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    except FileNotFoundError:  # no git at all: an unpacked source archive
        return False


def _as_git_stores_it(path: Path, cwd: Path = ROOT) -> str:
    """The working copy of ``path`` as ``git add`` would store it: through the clean filter
    that .gitattributes names, when this checkout has it configured."""
    text = path.read_text()
    driver = _git("check-attr", "filter", "--", str(path), cwd=cwd).stdout.rsplit(": ", 1)[-1]
    clean = _git("config", f"filter.{driver.strip()}.clean", cwd=cwd).stdout.strip()
    if not clean:
        return text
    # git runs the filter through the shell, in the top folder of the work tree
    filtered = subprocess.run(
        clean, shell=True, cwd=cwd, input=text, capture_output=True, text=True, timeout=60
    )
    assert filtered.returncode == 0, filtered.stderr
    return filtered.stdout


def _outputs(notebook_text: str) -> list:
    notebook = json.loads(notebook_text)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    return [
        (cell.get("outputs"), cell.get("execution_count"))
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    """What git holds or would store is output-free; JupyterLab's outputs in the working copy
    are fine once the filter is configured (`make lab` and `make test` do)."""
    if not _in_a_git_checkout():
        assert _outputs(path.read_text()) == [], path
        return
    relative = path.relative_to(ROOT).as_posix()
    if _git("ls-files", "--error-unmatch", "--", relative).returncode == 0:
        staged = _git("show", f":{relative}")  # the index: what the next commit holds
        assert staged.returncode == 0, staged.stderr
        assert _outputs(staged.stdout) == [], f"{relative} is staged with outputs"
    assert _outputs(_as_git_stores_it(path)) == [], (
        f"{relative} has outputs and git would store them: run `make notebook-filter`"
    )


def _save_as_jupyterlab_does(path: Path) -> None:
    """Outputs, execution counts and the kernel's details, as JupyterLab saves them."""
    notebook = json.loads(path.read_text())
    for number, cell in enumerate(notebook["cells"], start=1):
        if cell["cell_type"] == "code":
            cell["execution_count"] = number
            cell["outputs"] = [
                {
                    "output_type": "execute_result",
                    "execution_count": number,
                    "data": {"text/plain": ["42"], "image/png": "iVBORw0KGgo="},
                    "metadata": {},
                }
            ]
            cell["metadata"]["scrolled"] = True
    notebook["metadata"]["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    notebook["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": "3.11.2",
    }
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="no git")
def test_the_makefile_filter_keeps_jupyterlab_outputs_out_of_git(tmp_path):
    """A clone: without the filter, git still works; after `make notebook-filter`, a notebook
    JupyterLab saved with outputs shows no change and is staged without outputs."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Makefile", ".gitattributes"):
        shutil.copy(ROOT / name, clone / name)
    relative = reports.REPORT_NOTEBOOK.relative_to(ROOT).as_posix()
    # The notebook as this checkout's git stores it, whatever JupyterLab saved here.
    committed = (
        _as_git_stores_it(reports.REPORT_NOTEBOOK)
        if _in_a_git_checkout()
        else reports.REPORT_NOTEBOOK.read_text()
    )
    (clone / relative).parent.mkdir(parents=True)
    (clone / relative).write_text(committed)
    assert _git("init", "--quiet", cwd=clone).returncode == 0
    added = _git("add", "--all", cwd=clone)
    assert added.returncode == 0 and added.stderr == "", added.stderr

    configured = subprocess.run(
        # the virtualenv running this test is the one to use, and it is installed already
        ["make", "--no-print-directory", "notebook-filter", f"VENV={ROOT / '.venv'}", "INSTALLED="],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert configured.returncode == 0, configured.stderr
    _save_as_jupyterlab_does(clone / relative)
    assert _outputs((clone / relative).read_text()) != []
    # The saved notebook reads as unchanged: no outputs, no kernel version to commit.
    changed = _git("diff", "--stat", cwd=clone)
    assert changed.returncode == 0 and changed.stdout == "", changed.stdout
    assert _git("add", "--all", cwd=clone).returncode == 0
    assert _git("show", f":{relative}", cwd=clone).stdout == committed


# Which files make up a table is the Iceberg catalog's business: a notebook that opened a
# catalog file or read data files itself would read replaced or half-committed files.
DIRECT_TABLE_ACCESS = re.compile(
    r"import duckdb|duckdb\.connect|pyiceberg|read_parquet|\.parquet|catalog\.duckdb"
    r"|iceberg_catalog|warehouse/|tables/|glob\("
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_read_the_lake_through_etl_lib(path):
    notebook = json.loads(path.read_text())
    code = "\n".join(
        "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"
    )
    assert "from etl_lib." in code
    assert DIRECT_TABLE_ACCESS.findall(code) == [], path


REPORT_PARAMETERS = ("as_of", "days", "playlist_id", "engine", "lake", "output_dir", "tables_dir")


def test_report_parameters_cell_defaults_fit_jupyterlab_and_papermill(
    monkeypatch, tmp_path, caplog
):
    import papermill

    # papermill lists each parameter (`papermill --help-notebook`) without a line it can't read
    assert set(REPORT_PARAMETERS) <= set(papermill.inspect_notebook(str(reports.REPORT_NOTEBOOK)))
    assert "Unable to parse" not in caplog.text

    # The defaults, as JupyterLab runs them: the lake `make lab` names, the demo's last day,
    # and charts and tables in a new temporary folder, not in notebooks/.
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    [cell] = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", "/srv/lake")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    namespace: dict = {}
    exec(compile("".join(cell["source"]), "parameters", "exec"), namespace)  # noqa: S102
    assert namespace["lake"] == "/srv/lake"
    assert namespace["as_of"] == AS_OF and namespace["playlist_id"] == DEMO_PLAYLIST
    for folder in ("output_dir", "tables_dir"):
        assert Path(namespace[folder]).is_relative_to(tmp_path), folder


@pytest.mark.parametrize(
    "notebook", [p for p in NOTEBOOKS if p.parent == REPORT_NOTEBOOKS], ids=lambda p: p.name
)
def test_a_report_notebook_runs_in_jupyterlab_without_writing_into_notebooks(
    demo_lake, tmp_path, monkeypatch, notebook
):
    """As `make lab` runs it: no parameters injected, in its own folder, the lake from the
    environment. The charts land in the temporary folder; notebooks/ gains nothing."""
    import papermill

    def listing() -> dict[str, int]:
        return {
            path.relative_to(ROOT).as_posix(): path.stat().st_mtime_ns
            for path in (ROOT / "notebooks").rglob("*")
        }

    before = listing()
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", demo_lake)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # the kernel's temporary folder
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "executed.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(notebook.parent),
    )
    assert listing() == before
    charts = [path.suffix for path in temporary.rglob("*") if path.suffix in {".png", ".svg"}]
    assert ".png" in charts and ".svg" in charts


def test_explore_notebook_runs_on_the_demo_lake(demo_lake, tmp_path):
    import papermill

    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explore_top_songs.ipynb"),
        str(tmp_path / "explore.ipynb"),
        parameters={"lake": demo_lake},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    # Every chart is a picture in JupyterLab, not "<Figure size ...>" text alone.
    executed = json.loads((tmp_path / "explore.ipynb").read_text())
    shown = [
        output.get("data", {}) for cell in executed["cells"] for output in cell.get("outputs", [])
    ]
    figures = [data for data in shown if "Figure size" in "".join(data.get("text/plain", ""))]
    pictures = [data for data in shown if {"image/png", "image/svg+xml"} & data.keys()]
    assert figures and all(data in pictures for data in figures)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_report_publishes_html_charts_and_status(demo_lake, capfd):
    result = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30)
    assert result.succeeded, result.status
    # The kernel talks over Unix sockets in the report's private folder, not TCP ports
    # (ipykernel warns about those), and its log does not reach the user's terminal.
    assert "IPKernelApp" not in capfd.readouterr().err
    prefix = reports.report_prefix(DEMO_PLAYLIST, AS_OF)
    status = json.loads(storage.read_bytes(demo_lake, f"{prefix}/status.json"))
    assert status["succeeded"] and status["parameters"]["days"] == 30
    html = storage.read_bytes(demo_lake, f"{prefix}/report.html").decode()
    assert "2026-10-02" in html and "2026-10-31" in html  # the window is stated
    assert "import " not in html  # code cells are left out
    assert "<script" not in html  # nbconvert's CDN scripts are left out too
    # The name the report showed is recorded, and the index links to the report.
    assert status["playlist_name"] and status["playlist_name"] in html
    index = storage.read_bytes(demo_lake, reports.INDEX).decode()
    assert f'href="{DEMO_PLAYLIST}/{AS_OF}/report.html"' in index
    assert status["playlist_name"] in index
    charts = [name for name in status["files"] if name.startswith("charts/")]
    assert any(name.endswith(".png") for name in charts)
    # Every chart is in the page itself, as the SVG published beside it (inline, so its text
    # stays text), and no matplotlib "<Figure size ...>" text is left.
    svg_names = [n for n in charts if n.endswith(".svg")]
    assert len(svg_names) >= 4 and "&lt;Figure size" not in html

    def view_boxes(text: str) -> Counter:
        return Counter(re.findall(r'<svg\b[^>]*\sviewBox="([^"]+)"', text))

    published = sum(
        (
            view_boxes(storage.read_bytes(demo_lake, f"{prefix}/{name}").decode())
            for name in svg_names
        ),
        Counter(),
    )
    assert sum(published.values()) == len(svg_names)
    assert published <= view_boxes(html)
    # The PNGs are published too, one a chart.
    pngs = [storage.read_bytes(demo_lake, f"{prefix}/{n}") for n in charts if n.endswith(".png")]
    assert len(pngs) == len(svg_names) and all(min(_png_size(png)) > 100 for png in pngs)

    # Same inputs, same SVGs.
    svgs = {n: storage.read_bytes(demo_lake, f"{prefix}/{n}") for n in charts if n.endswith(".svg")}
    again = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30)
    assert again.succeeded
    assert {n: storage.read_bytes(demo_lake, f"{prefix}/{n}") for n in svgs} == svgs


def test_parameters_override_the_defaults(demo_lake):
    result = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of="2026-10-20", days=7)
    assert result.succeeded, result.status
    html = storage.read_bytes(demo_lake, f"{result.output_prefix}/report.html").decode()
    assert "2026-10-14" in html and "2026-10-20" in html


def test_a_one_day_window_says_there_is_nothing_to_compare(demo_lake):
    result = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of="2026-10-20", days=1)
    assert result.succeeded, result.status
    html = storage.read_bytes(demo_lake, f"{result.output_prefix}/report.html").decode()
    # Once for each of the bump chart, climbers and fallers, entries and drop-outs.
    assert html.count("The window holds 1 chart day: there is nothing to compare") == 3
    charts = {name for name in result.files if name.startswith("charts/")}
    assert "charts/bump_chart.svg" not in charts and "charts/climbers_fallers.svg" not in charts
    # The chart table still counts days on chart since each song was first seen (10-02).
    csv = storage.read_bytes(demo_lake, f"{result.output_prefix}/tables/chart.csv")
    chart = pd.read_csv(io.BytesIO(csv))
    assert len(chart) == 50 and chart["days_on_chart"].max() == 19


def test_a_failing_report_keeps_the_good_one_and_names_the_cell(demo_lake, tmp_path):
    good = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30)
    good_html = storage.read_bytes(demo_lake, f"{good.output_prefix}/report.html")
    broken = tmp_path / "broken.ipynb"
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    notebook["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["raise RuntimeError('the chart data is inconsistent')"],
        }
    )
    broken.write_text(json.dumps(notebook))

    failed = reports.run_report(
        demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30, notebook=broken
    )

    assert not failed.succeeded
    assert "RuntimeError: the chart data is inconsistent" in failed.error
    # the index counts cells of the executed notebook, which has papermill's injected cell
    assert failed.status["failing_cell"]["index"] == len(notebook["cells"])
    status = json.loads(storage.read_bytes(demo_lake, f"{failed.output_prefix}/status.json"))
    assert status["failing_cell"]["source"].startswith("raise RuntimeError")
    assert storage.read_bytes(demo_lake, f"{good.output_prefix}/report.html") == good_html
    kept = json.loads(storage.read_bytes(demo_lake, f"{good.output_prefix}/status.json"))
    assert kept["succeeded"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_jupyterlab_lists_the_notebooks_and_starts_a_kernel(demo_lake, tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--allow-root",  # CI runs as root; harmless otherwise
            f"--ServerApp.root_dir={ROOT / 'notebooks'}",
            "--ServerApp.port_retries=0",
        ],
        env={
            **os.environ,
            "SPOTIFY_ETL_LAKE": demo_lake,
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/api/status", headers=headers, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
            time.sleep(0.5)
        listing = requests.get(f"{base}/api/contents", headers=headers, timeout=10).json()
        names = {item["name"] for item in listing["content"]}
        assert "explore_top_songs.ipynb" in names
        kernel = requests.post(
            f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60
        ).json()
        assert kernel["name"] == "python3"
        # The server reports "starting" until a client attaches: attach to the kernel it
        # started (its connection file is in our runtime dir) and run code in it.
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(tmp_path / f"kernel-{kernel['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive("import sys; sys.version_info[0]", timeout=30)
            assert reply["content"]["status"] == "ok"
        finally:
            client.stop_channels()
        requests.delete(f"{base}/api/kernels/{kernel['id']}", headers=headers, timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("import time\ntime.sleep(30)", "ran past the timeout"),
        ("import os\nos._exit(1)", "kernel died"),
    ],
    ids=["timeout", "kernel-death"],
)
def test_timeouts_and_kernel_deaths_are_recorded(demo_lake, tmp_path, cell, expected):
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    # Right after the parameters, so that only this cell can meet the short timeout.
    notebook["cells"].insert(
        1,
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": [cell],
        },
    )
    broken = tmp_path / "broken.ipynb"
    broken.write_text(json.dumps(notebook))
    result = reports.run_report(
        demo_lake,
        playlist_id=DEMO_PLAYLIST,
        as_of="2026-10-30",
        days=7,
        notebook=broken,
        timeout_seconds=3,
    )
    assert not result.succeeded
    assert expected in result.error
    status = json.loads(storage.read_bytes(demo_lake, f"{result.output_prefix}/status.json"))
    assert status["succeeded"] is False and expected in status["error"]
    assert isinstance(status["kernel_log"], list)  # what the kernel said, for the post-mortem
