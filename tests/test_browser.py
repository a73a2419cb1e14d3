"""The demo report as a browser renders it: headless Chromium (Debian's ``chromium``).

Checks that every figure loads with a non-zero size, that the headline asymptote table is
present and on the first screen with Figure A, and that the page logs no console message.
Keeps a screenshot of the first screen (1366 x 900) and the page in ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from scale_transfer.cli import main
from scale_transfer.sampling import ConvergenceWarning

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WINDOW = (1366, 900)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # paint the whole first screen before the screenshot (else tiles may stay blank)
    "--run-all-compositor-stages-before-draw",
    "--disable-features=PaintHolding",
    "--disable-checker-imaging",
    "--disable-threaded-animation",
    "--disable-threaded-scrolling",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)

# Hooks console and load errors first, then on load writes what it measured into the title.
PROBE = """<script>
(function () {
  var errors = [];
  var keep = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    keep.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    errors.push("error: " + (e.message || t.tagName || "unknown"));
  }, true);
  window.addEventListener("load", function () {
    function box(el) {
      if (!el) { return null; }
      var r = el.getBoundingClientRect();
      return {top: r.top, bottom: r.bottom, width: r.width, height: r.height};
    }
    var images = Array.prototype.map.call(document.images, function (img) {
      var fig = img.closest("figure");
      return {figure: fig ? fig.id : "", complete: img.complete,
              width: img.naturalWidth, height: img.naturalHeight, box: box(img)};
    });
    var result = {
      images: images,
      headline: box(document.querySelector("#answer table")),
      headline_rows: document.querySelectorAll("#answer table tbody tr").length,
      figure_a: box(document.querySelector("#figure_a img")),
      viewport: [window.innerWidth, window.innerHeight],
      errors: errors
    };
    document.title = "PROBE " + btoa(JSON.stringify(result));
  });
})();
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not found: install Debian's 'chromium' (make test installs it)")


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """The demo's report (a small simulation and fit): what `make demo` writes."""
    out = tmp_path_factory.mktemp("browser") / "demo"
    args = ["demo", "--out", str(out), "--n-models", "200", "--draws", "100", "--tune", "100"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        main([*args, "--chains", "2", "--seed", "1"])
    return out / "report.html"


@pytest.fixture(scope="module")
def probe(demo_report, tmp_path_factory) -> dict:
    """What the probe script measured in the rendered page."""
    page = demo_report.read_text(encoding="utf-8")
    probed = demo_report.with_name("probed.html")
    probed.write_text(page.replace('<meta charset="utf-8">', '<meta charset="utf-8">' + PROBE, 1))
    proc = run_chromium(
        ["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        tmp_path_factory.mktemp("profile"),
    )
    m = re.search(r"<title>PROBE ([A-Za-z0-9+/=]+)</title>", proc.stdout)
    assert m, f"the probe did not run; chromium said:\n{proc.stderr[-3000:]}"
    return json.loads(base64.b64decode(m.group(1)))


def test_every_figure_loads(probe):
    assert len(probe["images"]) >= 6
    for img in probe["images"]:
        assert img["complete"] and img["width"] > 0 and img["height"] > 0, img
        assert img["box"]["width"] > 0 and img["box"]["height"] > 0, img  # shown, not hidden
        assert img["box"]["width"] <= probe["viewport"][0], img  # no wider than the screen


def test_first_screen_shows_the_asymptotes_and_figure_a(probe):
    height = WINDOW[1]  # the screenshot's (the probe's window keeps a strip for its frame)
    table, fig = probe["headline"], probe["figure_a"]
    assert table is not None and probe["headline_rows"] >= 2
    assert table["bottom"] <= height  # the whole asymptote table
    assert fig is not None and fig["top"] < height - 0.5 * fig["height"]  # most of Figure A


def test_no_console_errors(probe, demo_report, tmp_path_factory):
    assert probe["errors"] == []
    # the page as shipped (no probe) logs nothing to the console either
    proc = run_chromium(
        ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
         demo_report.as_uri()],
        tmp_path_factory.mktemp("profile"),
    )  # fmt: skip
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert "<h1>" in proc.stdout


def test_screenshot_artifact(demo_report, tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_first_screen.png"
    shot.unlink(missing_ok=True)
    proc = run_chromium(
        [f"--screenshot={shot}", "--virtual-time-budget=10000", demo_report.as_uri()],
        tmp_path_factory.mktemp("profile"),
    )
    assert shot.exists(), proc.stderr[-3000:]
    png = shot.read_bytes()
    assert png[:4] == b"\x89PNG"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == WINDOW
    shutil.copy(demo_report, ARTIFACTS / "report.html")
