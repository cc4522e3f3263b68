"""The published pages in a real browser: headless Chromium draws every chart.

Chromium is driven over the DevTools protocol on 127.0.0.1: the test opens each page, lists
its images (``<img>`` and inline ``<svg>``) with the boxes the browser laid out, and takes a
screenshot of each to see that something was drawn. Without Chromium the tests skip.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from etl_lib.cli.demo import DEMO_LAST_DAY, DEMO_PLAYLIST, run_demo
from etl_lib.lake import storage
from etl_lib.reporting import reports

pytestmark = pytest.mark.browser

BROWSER = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium (Debian: apt-get install chromium; .ci/run does)"
)
AS_OF = DEMO_LAST_DAY.date().isoformat()
STARTUP_SECONDS = 30
LOAD_SECONDS = 30

# Every image the page shows, with its laid-out box in page coordinates: <img> elements and
# the outermost <svg> elements (an svg inside an svg is part of its picture).
PAGE_IMAGES = """
JSON.stringify({
  images: [...document.images, ...document.querySelectorAll("svg")]
    .filter(element => !(element.parentElement && element.parentElement.closest("svg")))
    .map(element => {
      const box = element.getBoundingClientRect();
      return {
        tag: element.tagName.toLowerCase(),
        x: box.left + window.scrollX, y: box.top + window.scrollY,
        width: box.width, height: box.height,
        decoded: element.tagName !== "IMG" || (element.complete && element.naturalWidth > 0),
        source: (element.getAttribute("src") || "").slice(0, 60),
      };
    }),
  text: document.body.innerText,
  title: document.title,
})
"""


class DevTools:
    """A DevTools protocol session with one page: commands and the events that came."""

    def __init__(self, websocket_url: str):
        import websocket

        self._socket = websocket.create_connection(
            websocket_url, timeout=LOAD_SECONDS, suppress_origin=True
        )
        self._last_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        self._socket.close()

    def call(self, method: str, **params) -> dict:
        self._last_id += 1
        self._socket.send(json.dumps({"id": self._last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._last_id:
                assert "error" not in message, (method, message["error"])
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            for message in self.events:
                if message.get("method") == event:
                    self.events.remove(message)
                    return message
            assert time.monotonic() < deadline, f"no {event} within {seconds} s"
            self.events.append(json.loads(self._socket.recv()))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium listening on a free port of 127.0.0.1, with a throwaway profile."""
    import requests

    profile = tmp_path_factory.mktemp("chromium-profile")
    command = [
        BROWSER,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--window-size=1400,1000",
        "--hide-scrollbars",
        "about:blank",
    ]
    if os.geteuid() == 0:  # Chromium will not start its sandbox as root (CI is root)
        command.insert(1, "--no-sandbox")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Chromium writes the port it chose into the profile once it listens.
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            assert process.poll() is None, f"Chromium exited with {process.returncode}"
            assert time.monotonic() < deadline, f"Chromium did not start in {STARTUP_SECONDS} s"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        [page] = [target for target in targets if target["type"] == "page"]
        devtools = DevTools(page["webSocketDebuggerUrl"])
        devtools.call("Page.enable")
        devtools.call("Network.enable")
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _open(devtools: DevTools, path: Path) -> dict:
    """Load ``path`` and describe it as the browser laid it out."""
    devtools.events.clear()
    devtools.call("Page.navigate", url=path.resolve().as_uri())
    devtools.wait_for("Page.loadEventFired", LOAD_SECONDS)
    requested = [
        event["params"]["request"]["url"]
        for event in devtools.events
        if event.get("method") == "Network.requestWillBeSent"
    ]
    result = devtools.call("Runtime.evaluate", expression=PAGE_IMAGES, returnByValue=True)
    page = json.loads(result["result"]["value"])
    page["requested"] = requested
    return page


def _fetched_from_elsewhere(page: dict) -> list[str]:
    """What the page loaded besides its own file and inline pictures: it should stand alone."""
    return [url for url in page["requested"] if not url.startswith(("file:", "data:"))]


def _drawn_share(devtools: DevTools, image: dict) -> float:
    """The share of the image's pixels that differ from its most common colour."""
    from matplotlib import image as png

    clip = {key: image[key] for key in ("x", "y", "width", "height")} | {"scale": 1}
    shot = devtools.call(
        "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
    )
    pixels = png.imread(io.BytesIO(base64.b64decode(shot["data"])), format="png")
    colours = pixels.reshape(-1, pixels.shape[-1])
    _, counts = np.unique(colours, axis=0, return_counts=True)
    return 1 - counts.max() / len(colours)


# The pages with charts: one chart's report, and the comparison of the demo's charts.
REPORT_PAGES = {
    "chart": reports.report_prefix(DEMO_PLAYLIST, AS_OF),
    "comparison": reports.comparison_prefix(AS_OF),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A demo lake (one week) with the Global chart's report, the comparison of the charts
    and the index published."""
    root = str(tmp_path_factory.mktemp("browser") / "lake")
    run_demo(root, days=7)
    for result in (
        reports.run_report(root, playlist_id=DEMO_PLAYLIST, as_of=AS_OF, days=7),
        reports.run_comparison_report(root, as_of=AS_OF, days=7),
    ):
        assert result.succeeded, result.error
    return Path(root)


def _charts_published(lake_root: Path, prefix: str) -> set[str]:
    """The charts the report published beside its page (each as PNG and SVG: one name)."""
    status = json.loads(storage.read_bytes(str(lake_root), f"{prefix}/status.json"))
    return {Path(name).stem for name in status["files"] if name.startswith("charts/")}


@needs_browser
@pytest.mark.parametrize("report", REPORT_PAGES)
def test_every_chart_of_a_report_is_drawn_in_the_browser(browser, published, report):
    page = _open(browser, published / REPORT_PAGES[report] / "report.html")

    assert "<Figure" not in page["text"] and "Figure size" not in page["text"]
    charts = _charts_published(published, REPORT_PAGES[report])
    assert len(charts) >= 2, charts
    # A chart is laid out at least this big; anything smaller (an icon) must still draw.
    shown = [i for i in page["images"] if i["width"] >= 300 and i["height"] >= 150]
    assert len(shown) >= len(charts), page["images"]
    for image in page["images"]:
        assert image["decoded"], image
        assert image["width"] > 0 and image["height"] > 0, image
        assert _drawn_share(browser, image) > 0.01, image
    assert _fetched_from_elsewhere(page) == []


@needs_browser
def test_the_index_shows_in_the_browser_and_links_the_report(browser, published):
    page = _open(browser, published / reports.INDEX)

    assert "<Figure" not in page["text"]
    assert page["title"] and AS_OF in page["text"]
    for image in page["images"]:
        assert image["decoded"] and image["width"] > 0 and image["height"] > 0, image
        assert _drawn_share(browser, image) > 0.01, image
    links = browser.call(
        "Runtime.evaluate",
        expression="JSON.stringify([...document.links].map(link => link.href))",
        returnByValue=True,
    )
    report = (published / reports.report_prefix(DEMO_PLAYLIST, AS_OF) / "report.html").resolve()
    assert report.as_uri() in json.loads(links["result"]["value"])
    assert _fetched_from_elsewhere(page) == []
