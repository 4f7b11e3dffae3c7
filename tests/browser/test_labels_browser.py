"""Issue 18 in Chromium with the network cut off: every accuracy-by-position chart draws the same ticks
(explain.labels.reversal_axis: "position:reads → scored on") with the position-axis note right under it,
and the compare page writes its models and layer into the address bar.

The server comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re

import pytest

from explain.labels import reversal_axis

from . import test_app_browser as base
from .test_app_browser import assert_clean_app, open_app, screenshot

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
AXIS = reversal_axis(8, 0.1)  # the shipped reversal models: n = 8, vocabulary 10
AXIS_JS = """(prefix) => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(
        p => p.layout && p.layout.title
            && String(p.layout.title.text || '').replace(/<[^>]*>/g, '').startsWith(prefix));
    if (!plot || !plot.querySelector('.xtick text')) return null;
    const box = plot.closest('[data-testid="stElementContainer"]');
    const next = box ? box.nextElementSibling : null;
    return {drawn: [...plot.querySelectorAll('.xtick text')].map(t => t.textContent),
            categories: plot._fullData.map(trace => Array.from(trace.x)),
            below: next ? next.innerText : ''};
}"""


STILL_JS = """el => new Promise(done => {
    const top = el.getBoundingClientRect().top;
    requestAnimationFrame(() => requestAnimationFrame(() => done(el.getBoundingClientRect().top === top)));
})"""


def accuracy_axis(page, title_prefix: str) -> dict:
    """The drawn tick labels, each trace's categories and the text right below the chart titled title_prefix."""
    # the note is drawn after the chart in the same run: wait for both
    page.wait_for_function(f"() => {{ const found = ({AXIS_JS})({title_prefix!r}); return found && found.below; }}",
                           timeout=base.RUN_TIMEOUT_MS)
    return page.evaluate(AXIS_JS, title_prefix)


def assert_the_one_axis(found: dict) -> None:
    """Every trace on the categories of AXIS; every drawn tick one of them, in order (plotly may thin them)."""
    assert all(tuple(categories) == AXIS.ticks for categories in found["categories"]), found["categories"]
    drawn = found["drawn"]
    assert drawn and all(re.fullmatch(r"\d+:\w → \w", tick) for tick in drawn), drawn
    positions = [AXIS.ticks.index(tick) for tick in drawn]
    assert positions == sorted(positions) and drawn[0] == AXIS.ticks[0]


def test_compare_and_heads_off_draw_the_same_position_axis_and_its_note(app_url, page, browser_log, artifacts_dir):
    open_app(page, app_url)  # a fresh server's first request is the home page (see test_app_browser.py)
    open_app(page, f"{app_url}/compare_attention?checkpoint=reversal-mha", charts=2)
    page.get_by_role("button", name="Evaluate the models").click()
    compare = accuracy_axis(page, "Accuracy by position on fresh sequences")
    assert_the_one_axis(compare)
    assert compare["below"].startswith("Ticks read position:symbol") and "Positions 0 to 6" in compare["below"]
    screenshot(page, artifacts_dir / "labels-compare.png")
    assert_clean_app(page, browser_log)

    open_app(page, f"{app_url}/heads_off?checkpoint=reversal-mha&off_L0_H3=true", charts=2)
    heads_off = accuracy_axis(page, "Accuracy by position on fresh data")
    assert_the_one_axis(heads_off)
    assert heads_off["below"] == compare["below"]  # one note, word for word
    screenshot(page, artifacts_dir / "labels-heads_off.png")
    assert_clean_app(page, browser_log)


def test_the_train_page_draws_the_same_position_axis(app_url, page, browser_log, artifacts_dir):
    open_app(page, app_url)
    open_app(page, f"{app_url}/train")
    page.get_by_role("button", name="Start training").click()  # the defaults: a reversal of n = 8, vocabulary 10
    train = accuracy_axis(page, "Accuracy by position (step")
    assert_the_one_axis(train)
    assert train["below"].startswith("Ticks read position:symbol") and "Positions 0 to 6" in train["below"]
    screenshot(page, artifacts_dir / "labels-train.png")
    # the default run stops by itself once learned (the Stop button is redrawn at every live update, so a
    # click on it races the redraw)
    page.get_by_text(re.compile(r"Learned in \d+ steps")).first.wait_for(timeout=180_000)
    assert_clean_app(page, browser_log)


def test_the_compare_page_writes_its_models_and_layer_into_the_url(app_url, page, browser_log):
    open_app(page, app_url)
    open_app(page, f"{app_url}/compare_attention?checkpoint=reversal-mha", charts=2)
    layer = page.get_by_role("combobox", name="Layer")
    # The select sits below the fold: a click that scrolls it into view opens its menu while the page still
    # moves, and the scroll closes it again. Scroll first, then click once it stands still.
    layer.scroll_into_view_if_needed()
    page.wait_for_function(STILL_JS, arg=layer.element_handle(), timeout=10_000)
    layer.click()
    page.get_by_role("option", name="1", exact=True).click()
    page.wait_for_function("() => location.search.includes('cmp_layer=1')", timeout=30_000)
    shared = page.url
    open_app(page, shared, charts=2)
    assert page.get_by_role("combobox", name="Layer").input_value() == "1"
    page.get_by_text("reversal-gqa: layer 1", exact=False).first.wait_for(timeout=30_000)
    assert page.get_by_text("The link asked for").count() == 0
    assert_clean_app(page, browser_log)
