"""The app's second part in Chromium with the network cut off: the KV cache grows with Next, a training run
updates its charts live, stops, saves, and the saved model shows up in the sidebar's picker on another page.

The server comes from test_app_browser.py's module-scoped `app_url` fixture (a fresh `streamlit run
app.py`, user models in an empty temporary folder). Screenshots of the three pages go to tests/artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from . import test_app_browser as base
from .test_app_browser import APP_IDLE, RUN_TIMEOUT_MS, SHIPPED, assert_clean_app, open_app, screenshot

# The server (with its run log) and the offline page, shared with test_app_browser.py.
app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
GPTS = [c["name"] for c in SHIPPED if c["architecture"] == "gpt"]
POINTS_JS = """([prefix, trace]) => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(
        p => p.layout && p.layout.title
            && String(p.layout.title.text || '').replace(/<br>/g, ' ').replace(/<[^>]*>/g, '').startsWith(prefix));
    if (!plot) return -1;
    return plot.data[trace < 0 ? plot.data.length + trace : trace].x.length;
}"""


def points(page, title_prefix: str, trace: int = -1) -> int:
    """Points in one trace of the plotly chart whose title (in <b>, long ones broken with <br>) starts with
    title_prefix.

    -1 when there is no such chart.
    """
    return page.evaluate(POINTS_JS, [title_prefix, trace])


def wait_for_points(page, title_prefix: str, at_least: int, timeout_s: float = 60, trace: int = -1) -> int:
    """The trace's point count, once it is at least `at_least`."""
    try:
        page.wait_for_function(f"([prefix, trace, atLeast]) => ({POINTS_JS})([prefix, trace]) >= atLeast",
                               arg=[title_prefix, trace, at_least], timeout=timeout_s * 1000)
    except PlaywrightTimeoutError:
        pytest.fail(f"{title_prefix!r} has {points(page, title_prefix, trace)} points, wanted {at_least}")
    return points(page, title_prefix, trace)


# Records, in the page, each new point count of the loss chart's first trace; true once it has three.
LOSS_COUNTS_JS = f"""() => {{
    const count = ({POINTS_JS})(['Loss', 0]);
    const seen = window.lossCounts = window.lossCounts || [];
    if (count > 0 && count !== seen[seen.length - 1]) seen.push(count);
    return seen.length >= 3;
}}"""


def test_next_five_tokens_grow_the_cache_chart(app_url, page, browser_log, artifacts_dir):
    name = "reversal-gqa" if "reversal-gqa" in GPTS else GPTS[0]
    open_app(page, app_url)  # a fresh server's first request is the home page (see test_app_browser.py)
    open_app(page, f"{app_url}/kv_cache?checkpoint={name}", charts=5)
    assert wait_for_points(page, "KV-cache size", 1) == 1
    for step in range(1, 6):
        page.get_by_role("button", name="Next token").click()
        wait_for_points(page, "KV-cache size", step + 1)
        assert page.get_by_text(f"Step {step}", exact=False).first.is_visible()
    assert points(page, "KV-cache size") == 6
    assert points(page, "Time per token", 0) == 6
    assert page.get_by_text("gives the same next token at all 6 steps").is_visible()
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "app_kv_cache.png")


def test_compare_page_measures_decode_speed(app_url, page, browser_log, artifacts_dir):
    family = [c for c in SHIPPED if c["name"].startswith("reversal-")]
    open_app(page, app_url)
    open_app(page, f"{app_url}/compare_attention?checkpoint={SHIPPED[0]['name']}", charts=len(family) + 1)
    page.get_by_role("button", name="Measure decode speed").click()
    wait_for_points(page, "Decode speed with the KV cache", 3, timeout_s=240)
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "app_compare_attention.png")


def test_train_live_stop_save_and_pick(app_url, page, browser_log, artifacts_dir):
    open_app(page, app_url)  # the fresh-server rule again: this test may run alone
    open_app(page, f"{app_url}/train")
    page.get_by_label("steps (at most)", exact=True).fill("3000")
    page.locator("label").filter(has_text="Stop when learned").click()  # off: this run must still be going to be stopped
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function("() => location.search.includes('tr_stop_learned=false')", timeout=30_000)
    wait_for_points(page, "Loss", 1, timeout_s=120, trace=0)
    try:  # the first count and two updates after it
        page.wait_for_function(LOSS_COUNTS_JS, timeout=120_000, polling=100)
    except PlaywrightTimeoutError:
        pytest.fail(f"the loss chart did not update twice: {page.evaluate('() => window.lossCounts')}")
    seen = page.evaluate("() => window.lossCounts")
    assert seen == sorted(set(seen)) and seen[0] >= 1, seen  # the live chart only grows
    screenshot(page, artifacts_dir / "app_train_running.png")
    page.get_by_test_id("stButton").get_by_role("button", name="Stop", exact=True).click()  # not the header's
    page.get_by_text(re.compile(r"Stopped \(stopped by you\) after \d+ steps")).wait_for(timeout=120_000)
    page.get_by_label("Name", exact=True).fill("browser-run")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved as user/browser-run").wait_for(timeout=30_000)
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "app_train.png")

    open_app(page, f"{app_url}/heatmaps", charts=2)
    page.get_by_role("combobox", name="Checkpoint").click()
    page.get_by_role("option", name=re.compile("browser-run")).click()
    page.wait_for_function("() => location.search.includes('checkpoint=user%2Fbrowser-run') "
                           "|| location.search.includes('checkpoint=user/browser-run')", timeout=30_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("your own model").wait_for(timeout=90_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=90_000)
    assert_clean_app(page, browser_log)


def test_train_defaults_stop_when_learned(app_url, page, browser_log, artifacts_dir):
    """Start with the defaults: the run ends by itself, and the page says when and what it learned."""
    open_app(page, app_url)
    open_app(page, f"{app_url}/train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Learned in \d+ steps, [0-9.]+ seconds\.")).first.wait_for(timeout=180_000)
    page.get_by_text(re.compile(r"second half (100|99\.\d)% · first half \d+% \(chance 10%\)")).first.wait_for(
        timeout=30_000)
    page.get_by_text("has learned to write 8 random symbols backwards", exact=False).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Save", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)  # the last run: save form on
    page.wait_for_selector(APP_IDLE, state="attached", timeout=RUN_TIMEOUT_MS)  # ... and it has ended
    assert page.get_by_test_id("stButton").get_by_role("button", name="Stop", exact=True).count() == 0
    assert page.get_by_text(re.compile(r"Learned in \d+ steps")).count() == 1
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "app_train_learned.png")
