"""Notebooks: committed clean, executed by papermill on demo data, served by JupyterLab."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from etl_lib import lake, reports
from etl_lib.demo import DEMO_PLAYLIST, run_demo

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
AS_OF = "2026-10-31"


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("notebooks") / "lake")
    run_demo(root, days=30)
    return root


def test_the_notebooks_exist():
    names = {path.relative_to(ROOT / "notebooks").as_posix() for path in NOTEBOOKS}
    assert {"explore_top_songs.ipynb", "reports/top_songs_trends.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path


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
    assert "from etl_lib import" in code
    assert DIRECT_TABLE_ACCESS.findall(code) == [], path


def test_report_parameters_cell_holds_literal_defaults():
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    [cell] = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    source = "".join(cell["source"])
    namespace: dict = {}
    exec(compile(source, "parameters", "exec"), namespace)  # noqa: S102 - our own literal cell
    for name in ("as_of", "days", "playlist_id", "engine", "lake", "output_dir"):
        assert name in namespace, name


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
    # The chart is a picture in JupyterLab, not "<Figure size ...>" text.
    executed = json.loads((tmp_path / "explore.ipynb").read_text())
    outputs = [output for cell in executed["cells"] for output in cell.get("outputs", [])]
    pictures = [output["data"] for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 1


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
    status = json.loads(lake.read_bytes(demo_lake, f"{prefix}/status.json"))
    assert status["succeeded"] and status["parameters"]["days"] == 30
    html = lake.read_bytes(demo_lake, f"{prefix}/report.html").decode()
    assert "2026-10-02" in html and "2026-10-31" in html  # the window is stated
    assert "import " not in html  # code cells are left out
    assert "<script" not in html  # nbconvert's CDN scripts are left out too
    # The name the report showed is recorded, and the index links to the report.
    assert status["playlist_name"] and status["playlist_name"] in html
    index = lake.read_bytes(demo_lake, reports.INDEX).decode()
    assert f'href="{DEMO_PLAYLIST}/{AS_OF}/report.html"' in index
    assert status["playlist_name"] in index
    charts = [name for name in status["files"] if name.startswith("charts/")]
    assert any(name.endswith(".png") for name in charts)
    # Every chart is in the page itself, a picture the size of its published PNG.
    pngs = [n for n in charts if n.endswith(".png")]
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(pngs) and "&lt;Figure size" not in html
    published = [lake.read_bytes(demo_lake, f"{prefix}/{name}") for name in pngs]
    shown = [base64.b64decode(data) for data in embedded]
    assert sorted(map(_png_size, shown)) == sorted(map(_png_size, published))
    assert any(name.endswith(".svg") for name in charts)

    # Same inputs, same SVGs.
    svgs = {n: lake.read_bytes(demo_lake, f"{prefix}/{n}") for n in charts if n.endswith(".svg")}
    again = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30)
    assert again.succeeded
    assert {n: lake.read_bytes(demo_lake, f"{prefix}/{n}") for n in svgs} == svgs


def test_parameters_override_the_defaults(demo_lake):
    result = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of="2026-10-20", days=7)
    assert result.succeeded, result.status
    html = lake.read_bytes(demo_lake, f"{result.output_prefix}/report.html").decode()
    assert "2026-10-14" in html and "2026-10-20" in html


def test_a_failing_report_keeps_the_good_one_and_names_the_cell(demo_lake, tmp_path):
    good = reports.run_report(demo_lake, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=30)
    good_html = lake.read_bytes(demo_lake, f"{good.output_prefix}/report.html")
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
    status = json.loads(lake.read_bytes(demo_lake, f"{failed.output_prefix}/status.json"))
    assert status["failing_cell"]["source"].startswith("raise RuntimeError")
    assert lake.read_bytes(demo_lake, f"{good.output_prefix}/report.html") == good_html
    kept = json.loads(lake.read_bytes(demo_lake, f"{good.output_prefix}/status.json"))
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
        assert {"explore_top_songs.ipynb", "reports"} <= names
        reports_dir = requests.get(f"{base}/api/contents/reports", headers=headers, timeout=10)
        assert "top_songs_trends.ipynb" in {i["name"] for i in reports_dir.json()["content"]}
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
    notebook["cells"].insert(
        2,
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
    status = json.loads(lake.read_bytes(demo_lake, f"{result.output_prefix}/status.json"))
    assert status["succeeded"] is False and expected in status["error"]
    assert isinstance(status["kernel_log"], list)  # what the kernel said, for the post-mortem
