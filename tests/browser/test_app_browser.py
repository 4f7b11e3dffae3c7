"""The real app in Chromium with the network cut off: every page renders, bertviz draws, links round-trip.

A module-scoped fixture starts `streamlit run app.py` on a free local port (the user-models
folder pointed at an empty temporary directory, so only shipped checkpoints are listed) and
kills it afterwards. Every page gets a screenshot in tests/artifacts/; two go to
docs/screenshots/ for the README.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
START_TIMEOUT_S = 90
RUN_TIMEOUT_MS = 90_000
PAGES = {  # url path -> plotly charts the page draws for an input the model reads
    "": 0, "embeddings": 3, "positional": 5, "attention_steps": 7, "heatmaps": 2,
}
# Streamlit's frontend probes <page>/_stcore/health and <page>/_stcore/host-config on deep links
# before finding the server's base path: two harmless 404s per page load.
STREAMLIT_PROBE = re.compile(r"/[^/]+/_stcore/(health|host-config)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shipped_checkpoints() -> list[dict]:
    """Name, architecture, layers and heads of every shipped checkpoint, from config.json alone."""
    import json

    found = []
    for path in sorted((ROOT / "checkpoints").iterdir()):
        config = path / "config.json"
        if path.name.startswith(".") or not config.is_file():
            continue
        document = json.loads(config.read_text(encoding="utf-8"))
        found.append({"name": path.name, "architecture": document["architecture"],
                      "layers": document["config"]["n_layers"], "heads": document["config"]["n_heads"],
                      "task": (document.get("meta", {}).get("task") or {}).get("name")})
    order = ("reversal-mha", "reversal-gqa", "reversal-mqa", "dates", "shakespeare-mha", "shakespeare-mqa")
    return sorted(found, key=lambda c: (order.index(c["name"]) if c["name"] in order else len(order), c["name"]))


SHIPPED = shipped_checkpoints()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """Base URL of a fresh `streamlit run app.py` and its $TP_RUN_LOG; the server is killed when the module is done."""
    if not SHIPPED:
        pytest.fail("no shipped checkpoints in checkpoints/: the app has nothing to show", pytrace=False)
    run_log = tmp_path_factory.mktemp("run_log") / "runs.jsonl"
    env = os.environ | {"TP_USER_MODELS": str(tmp_path_factory.mktemp("no_user_models")), "TP_RUN_LOG": str(run_log)}
    with running_app(tmp_path_factory.mktemp("streamlit") / "server.log", env) as base:
        yield base, run_log


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    return app_server[0]


@contextmanager
def running_app(log_path: Path, env: dict) -> Iterator[str]:
    """Base URL of a `streamlit run app.py` with `env`, healthy; its process group is killed on exit."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base, server, log_path)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)


def _wait_for_health(base: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer /_stcore/health in {START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture
def page(page_offline):
    """The offline page, also recording failed (4xx/5xx) responses for `assert_clean_app`."""
    page_offline.failed_responses = []
    page_offline.on("response", lambda r: page_offline.failed_responses.append(r.url) if r.status >= 400 else None)
    return page_offline


def open_app(page, url: str, charts: int = 0) -> None:
    """Go to url and wait until the script has finished and drawn at least `charts` plotly charts."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]',
                           timeout=RUN_TIMEOUT_MS)
    if charts:
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {charts}",
                               timeout=RUN_TIMEOUT_MS)
    quiet_since = None
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:  # the status widget ("Running...") must stay gone for a second
        if page.locator('[data-testid="stStatusWidget"]').count():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.2)
    pytest.fail(f"the app was still running after {RUN_TIMEOUT_MS} ms: {url}")


def assert_clean_app(page, browser_log) -> None:
    """No exception box, nothing blocked or thrown, and the only 404s are Streamlit's base-path probes."""
    assert page.locator('[data-testid="stException"]').count() == 0
    unexpected = [url for url in page.failed_responses if not STREAMLIT_PROBE.search(url.split("?")[0])]
    assert not unexpected, f"failed requests: {unexpected}"
    browser_log.console_errors[:] = [e for e in browser_log.console_errors
                                     if not e.startswith("Failed to load resource: the server responded with a "
                                                         "status of 404")]
    browser_log.assert_clean()


# True once every shown plotly chart has been laid out at its element's width (plotly redraws after a resize,
# a moment after the element itself has its new width).
CHARTS_FIT_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].every(plot => {
    const svg = plot.querySelector('.main-svg');
    const holder = plot.closest('[data-testid="stElementContainer"]') || plot.parentElement;
    const width = holder.getBoundingClientRect().width;
    return width === 0 || (svg !== null && Math.abs(svg.getBoundingClientRect().width - width) <= 1);
})"""
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # no script run (page or fragment) going


def resize(page, width: int, height: int) -> None:
    """Set the viewport and wait until every chart is drawn at its new width."""
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function(CHARTS_FIT_JS, timeout=RUN_TIMEOUT_MS)


def screenshot(page, path: Path, width: int = 1400, max_height: int = 9000) -> None:
    """The whole page (Streamlit scrolls its main block, not the window, so the viewport is grown)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    resize(page, width, min(max(height, 800), max_height))
    page.screenshot(path=str(path))


def visible_chart_count(page) -> int:
    return page.locator(".js-plotly-plot").evaluate_all(
        "plots => plots.filter(p => p.getBoundingClientRect().width > 100 && p.querySelector('.main-svg')).length")


def test_link_round_trip_layer_and_head(app_url, page, browser_log):
    """First in this module on purpose: a deep link is the fresh server's first request (see ensure_entrypoint)."""
    fits = [c for c in SHIPPED if c["layers"] >= 2 and c["heads"] >= 3]
    target = next((c for c in fits if c is not SHIPPED[0]), fits[0] if fits else None)  # not the default, if any
    assert target is not None, "a shipped checkpoint has at least 2 layers and 3 heads"
    name = target["name"]
    open_app(page, f"{app_url}/heatmaps?checkpoint={name}&layer=1&head=2", charts=PAGES["heatmaps"])
    assert page.get_by_role("combobox", name="Checkpoint").input_value() == name
    assert page.get_by_role("combobox", name="Layer").input_value() == "1"
    assert page.get_by_role("combobox", name="Head").input_value() == "2"
    head_view = page.frame_locator('[data-testid="stIFrame"]').first
    assert head_view.locator("#layer").input_value() == "1"

    page.get_by_role("combobox", name="Head").click()
    page.get_by_role("option", name="0", exact=True).click()
    page.wait_for_function("() => !location.search.includes('head=')", timeout=20_000)  # the default leaves the URL
    page.get_by_role("combobox", name="Layer").click()
    page.get_by_role("option", name="0", exact=True).click()
    page.wait_for_function("() => !location.search.includes('layer=')", timeout=20_000)
    page.get_by_role("combobox", name="Head").click()
    page.get_by_role("option", name="2", exact=True).click()
    page.wait_for_function("() => location.search.includes('head=2')", timeout=20_000)
    shared = page.url
    assert "head=2" in shared and (f"checkpoint={name}" in shared or name == SHIPPED[0]["name"])

    open_app(page, shared, charts=PAGES["heatmaps"])
    assert page.get_by_role("combobox", name="Head").input_value() == "2"
    assert page.get_by_role("combobox", name="Layer").input_value() == "0"
    assert_clean_app(page, browser_log)


def test_switching_to_a_smaller_model_gives_no_link_warning(app_url, page, browser_log):
    """A layer picked on a 3-layer model is this session's own choice, not a link: reset without a warning."""
    names = {c["name"]: c for c in SHIPPED}
    assert {"shakespeare-mha", "reversal-mha"} <= set(names), "both models are shipped"
    open_app(page, f"{app_url}/heatmaps?checkpoint=shakespeare-mha", charts=PAGES["heatmaps"])
    page.get_by_role("combobox", name="Layer").click()
    page.get_by_role("option", name="2", exact=True).click()
    page.wait_for_function("() => location.search.includes('layer=2')", timeout=20_000)
    page.get_by_role("combobox", name="Checkpoint").click()
    page.get_by_role("option", name="reversal-mha", exact=True).click()
    # reversal-mha is the default checkpoint, so it leaves the URL as the layer does
    page.wait_for_function("() => !location.search.includes('layer=') && !location.search.includes('shakespeare')",
                           timeout=30_000)
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=RUN_TIMEOUT_MS)
    assert page.get_by_role("combobox", name="Layer").input_value() == "0"
    assert page.get_by_text("The link asked for layer").count() == 0
    assert_clean_app(page, browser_log)


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_offline(app_url, page, browser_log, artifacts_dir, path):
    name = SHIPPED[0]["name"]
    open_app(page, f"{app_url}/{path}?checkpoint={name}", charts=PAGES[path])
    assert_clean_app(page, browser_log)
    assert page.locator("h1").first.is_visible()
    assert visible_chart_count(page) == PAGES[path]
    screenshot(page, artifacts_dir / f"app_{path or 'home'}.png")


def test_heatmaps_page_draws_bertviz_offline(app_url, page, browser_log, artifacts_dir):
    open_app(page, f"{app_url}/heatmaps?checkpoint={SHIPPED[0]['name']}", charts=PAGES["heatmaps"])
    head_view, model_view = page.frame_locator('[data-testid="stIFrame"]').nth(0), \
        page.frame_locator('[data-testid="stIFrame"]').nth(1)
    head_view.locator("#vis svg line").first.wait_for(state="attached", timeout=20_000)
    model_view.locator("#vis svg").first.wait_for(state="attached", timeout=20_000)
    assert head_view.locator("#vis svg text").count() > 0
    for view in ("head", "model"):
        with page.expect_download(timeout=30_000) as download:
            page.get_by_role("button", name=re.compile(f"Download the {view} view")).click()
        assert download.value.suggested_filename.endswith(f"-{view}-view.html")
        html = Path(download.value.path()).read_text(encoding="utf-8")
        assert "<svg" in html or "d3" in html, html[:300]
        assert not re.search(r"<script[^>]+src=[\"']https?:", html), "the download must work offline"
    assert_clean_app(page, browser_log)


def one_per_task(checkpoints: list[dict]) -> list[str]:
    """The first shipped checkpoint of each task (AppTest covers every checkpoint; this covers every kind)."""
    seen: dict = {}
    for c in checkpoints:
        seen.setdefault((c["task"], c["architecture"]), c["name"])
    return list(seen.values())


@pytest.mark.parametrize("checkpoint", one_per_task(SHIPPED))
@pytest.mark.parametrize("path", ["attention_steps", "heatmaps"])
def test_attention_pages_for_every_kind_of_checkpoint(app_url, page, browser_log, artifacts_dir, checkpoint, path):
    open_app(page, f"{app_url}/{path}?checkpoint={checkpoint}", charts=PAGES[path])
    assert_clean_app(page, browser_log)
    assert visible_chart_count(page) == PAGES[path]
    screenshot(page, artifacts_dir / f"app_{path}_{checkpoint}.png", max_height=6000)


@pytest.mark.parametrize("text", ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"])
def test_hostile_input_is_shown_as_text(app_url, page, browser_log, text):
    open_app(page, f"{app_url}/heatmaps?checkpoint={SHIPPED[0]['name']}&text={quote(text)}")
    assert page.get_by_role("textbox", name="Input text").input_value() == text
    assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0
    assert page.locator('[data-testid="stMain"] script').count() == 0
    assert_clean_app(page, browser_log)  # no alert dialog, no page error


def test_a_path_in_the_link_gets_the_default_checkpoint(app_url, page, browser_log):
    open_app(page, f"{app_url}/attention_steps?checkpoint=../../etc/passwd", charts=PAGES["attention_steps"])
    assert page.get_by_role("combobox", name="Checkpoint").input_value() == SHIPPED[0]["name"]
    assert page.get_by_text("not one of the choices").is_visible()
    assert_clean_app(page, browser_log)


def test_readme_screenshots(app_url, page, artifacts_dir):
    """Two views for the README, in tests/artifacts/; copied to docs/screenshots/ with TP_UPDATE_SCREENSHOTS=1."""
    targets = [artifacts_dir] + ([DOCS_SCREENSHOTS] if os.environ.get("TP_UPDATE_SCREENSHOTS") == "1" else [])
    name = SHIPPED[0]["name"]
    open_app(page, f"{app_url}/attention_steps?checkpoint={name}", charts=PAGES["attention_steps"])
    resize(page, 1400, 1250)
    scores = page.get_by_role("heading", name=re.compile("3. Scores"))
    scores.evaluate("e => e.scrollIntoView({block: 'start'})")
    scores.evaluate("e => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")  # painted
    assert abs(scores.bounding_box()["y"]) < 80, scores.bounding_box()  # the section starts the picture
    shots = {"attention_steps.png": page.screenshot()}
    open_app(page, f"{app_url}/heatmaps?checkpoint={name}", charts=PAGES["heatmaps"])
    resize(page, 1400, 1100)
    shots["heatmaps.png"] = page.screenshot()
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, png in shots.items():
            (folder / (file_name if folder == DOCS_SCREENSHOTS else f"readme_{file_name}")).write_bytes(png)


def run_log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.mark.parametrize("path", ["heatmaps", "attention_steps"])
def test_a_head_change_reruns_only_the_page_fragment(app_server, page, browser_log, path):
    """app_lib.ui.page_fragment: a head change runs the part below the input, not app.py and the sidebar,
    and every chart then shows the new head."""
    base, run_log = app_server
    open_app(page, f"{base}/{path}", charts=PAGES[path])
    opened = run_log_lines(run_log)
    assert opened and opened[-1]["page"] == path and not opened[-1].get("fragment")  # opening is a full run
    head = page.get_by_role("combobox", name="Head")
    head.click()
    page.get_by_role("option", name="1", exact=True).click()
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while len(run_log_lines(run_log)) == len(opened) and time.monotonic() < deadline:
        time.sleep(0.2)
    # A run is logged as it ends; a further run it asked for (st.rerun) keeps the app's script state
    # "running", so once the state is "notRunning" every run the change caused is in the log.
    page.wait_for_selector(APP_IDLE, state="attached", timeout=RUN_TIMEOUT_MS)
    changed = run_log_lines(run_log)[len(opened):]
    assert changed, "the head change ran nothing on the server"
    assert all(r["page"] == path and r.get("fragment") and r["end"] == "ok" for r in changed), changed
    assert head.input_value() == "1"
    assert_clean_app(page, browser_log)
    # What the browser draws, not only what the server sent: the same number of charts, and every
    # chart title that names a head names head 1. (A chart that keeps its element id across a figure
    # change keeps showing its first figure in Streamlit 1.67's frontend: this caught that.)
    script = ("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
              ".map(p => JSON.stringify((p.layout || {}).title || '').replaceAll('<br>', ' '))")  # wrapped titles
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while True:
        titles = page.evaluate(script)
        heads = {int(n) for title in titles for n in re.findall(r"head (\d+)", title)}
        if (len(titles) == PAGES[path] and heads == {1}) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(titles) == PAGES[path], titles
    assert heads == {1}, titles
