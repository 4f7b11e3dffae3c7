"""Issue 18 in Chromium: the pages at 1400 and 800 px, presentation mode on and off.

Measured in the page, not guessed: no formula, chart or chart title wider than its container, no label cut
short ("Next …"), x labels that never overlap yet all present, a sidebar of SIDEBAR_PX, the bertviz model view's
last head inside its frame, and bertviz opened on the page's attention (dates + cross: Cross).
The server comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to
tests/artifacts/layout/; look at them.
"""

from __future__ import annotations

import pytest

from app_lib.sidebar import SIDEBAR_PX
from viz.style import MIN_TICK_PX, PRESENT_FONT_PX

from . import test_app_browser as base
from .test_app_browser import RUN_TIMEOUT_MS, SHIPPED, assert_clean_app, open_app

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REVERSAL, DATES = "reversal-mha", "dates"
SHIPPED_NAMES = {c["name"] for c in SHIPPED}
needs_reversal = pytest.mark.skipif(REVERSAL not in SHIPPED_NAMES, reason="no reversal-mha")
needs_dates = pytest.mark.skipif(DATES not in SHIPPED_NAMES, reason="no dates checkpoint")
CHARTS = {"attention_steps": 7, "heatmaps": 2, "kv_cache": 3, "positional": 5}
WIDTHS = [1400, 800]

# True once every chart has drawn and nothing (chart sizes, tick labels, frame heights) has changed for
# 600 ms: plotly lays out again after the script run and after a resize. Polled by wait_for_function.
SETTLED_JS = """() => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    if (plots.some(p => !p.querySelector('.main-svg'))) { window.__tpShape = null; return false; }
    const shape = JSON.stringify([
        plots.map(p => { const r = p.getBoundingClientRect();
                         return [Math.round(r.width), Math.round(r.height),
                                 p.querySelectorAll('.xaxislayer-above text').length,
                                 p.querySelectorAll('.yaxislayer-above text').length]; }),
        [...document.querySelectorAll('iframe')].map(f => Math.round(f.getBoundingClientRect().height))]);
    if (window.__tpShape !== shape) { window.__tpShape = shape; window.__tpSince = performance.now(); return false; }
    return performance.now() - window.__tpSince > 600;
}"""

# Per formula (KaTeX), how far its drawing reaches past the right edge of the element that holds it.
FORMULAS_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] .katex')].map(k => {
    const holder = k.closest('[data-testid="stElementContainer"]') || k.parentElement;
    const right = Math.max(...[...k.querySelectorAll('.katex-html .base')].map(b => b.getBoundingClientRect().right));
    return {text: k.textContent.slice(0, 60), overflow: right - holder.getBoundingClientRect().right};
})"""

# Text Streamlit cut short with an ellipsis ("Next …"): button and toggle labels, metric labels, page names.
TRUNCATED_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')]
    .filter(e => e.offsetParent !== null && getComputedStyle(e).textOverflow === 'ellipsis'
                 && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""

# Per chart: its title, container overflow, tick font sizes per axis letter, and x labels that overlap.
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const title = String((plot.layout.title || {}).text || '').replace(/<[^>]*>/g, '');
    // tick labels of every subplot's axes (plotly's groups are .xtick, .x2tick ... inside .xaxislayer-above)
    const texts = axis => [...plot.querySelectorAll(`.${axis}axislayer-above text`)]
        .filter(t => t.textContent.trim() !== '');
    const size = t => parseFloat(getComputedStyle(t).fontSize);
    // Each x label's em box (its text's width x its font size), turned as plotly turned it, on the screen;
    // two labels overlap when no axis separates their boxes (the separating axis test for convex shapes).
    const corners = t => {
        const box = t.getBBox(), em = size(t), m = t.getScreenCTM(), top = box.y + (box.height - em) / 2;
        return [[box.x, top], [box.x + box.width, top], [box.x + box.width, top + em], [box.x, top + em]]
            .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
    };
    const apart = (p, q) => [p, q].some(shape => shape.some((c, i) => {
        const d = shape[(i + 1) % 4], axis = [d[1] - c[1], c[0] - d[0]];
        const span = s => s.map(v => v[0] * axis[0] + v[1] * axis[1]);
        const a = span(p), b = span(q), length = Math.hypot(...axis);
        return (Math.min(Math.max(...a), Math.max(...b)) - Math.max(Math.min(...a), Math.min(...b))) / length < 0.5;
    }));
    const boxes = texts('x').map(corners);
    let overlaps = 0;
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++)
        if (!apart(boxes[i], boxes[j])) overlaps += 1;
    const svg = plot.querySelector('.main-svg');
    const holder = plot.closest('[data-testid="stElementContainer"]') || plot.parentElement;
    const heat = (plot._fullData || []).filter(t => t.type === 'heatmap' && t.name !== 'masked');
    const categories = new Set(heat.flatMap(t => Array.from(t.x || []).filter(x => typeof x === 'string')));
    const heading = plot.querySelector('.gtitle'), drawn = svg ? svg.getBoundingClientRect() : null;
    return {title, overlaps, xsizes: texts('x').map(size), ysizes: texts('y').map(size),
            xticks: texts('x').map(t => t.textContent), categories: [...categories],
            overflow: svg ? drawn.width - holder.getBoundingClientRect().width : 0,
            titleOverflow: heading && drawn ? heading.getBoundingClientRect().right - drawn.right : 0};
})"""

# In a bertviz frame: how far its SVG reaches past the frame's width, and the Attention menu's choice.
FRAME_JS = """() => {
    const svg = document.querySelector('#vis svg'), filter = document.querySelector('#filter');
    const texts = svg ? [...svg.querySelectorAll('text')] : [];
    return {overflow: svg ? svg.getBoundingClientRect().right - document.documentElement.clientWidth : null,
            rightmost: Math.max(...texts.map(t => t.getBoundingClientRect().right)),
            width: document.documentElement.clientWidth,
            scrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth + 1,
            attention: filter ? filter.selectedOptions[0].textContent : null,
            heads: texts.map(t => t.textContent)};
}"""


def settle(page) -> None:
    """Wait until the charts and frames have stopped changing (plotly lays out again after a run or resize)."""
    page.wait_for_function(SETTLED_JS, timeout=RUN_TIMEOUT_MS, polling=200)


def open_page(page, app_url: str, path: str, query: str, width: int, charts: int | None = None) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, f"{app_url}/{path}?{query}", charts=CHARTS.get(path, 0) if charts is None else charts)
    settle(page)


def full_screenshot(page, path, width: int) -> None:
    """The whole page: Streamlit scrolls its main block, not the window, so the viewport is grown to fit it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(height, 800), 9000)})
    settle(page)
    page.screenshot(path=str(path))


def bertviz_frames(page) -> list:
    """The head view's and model view's frames, once each has drawn its SVG."""
    frames = [page.frame_locator('[data-testid="stIFrame"]').nth(i) for i in range(2)]
    for frame in frames:
        frame.locator("#vis svg text").first.wait_for(state="attached", timeout=30_000)
    settle(page)
    return frames


def assert_fits(page, present: bool) -> list[dict]:
    """Formulas and charts inside their containers, no label cut short, x labels apart; the charts drawn.

    In presentation mode every token is labelled and y labels are PRESENT_FONT_PX; x labels are as large as
    their columns allow at 800 px (viz.style.tick_font_px). Where even MIN_TICK_PX is too large (the three
    score panels side by side at 800 px: 6.5 px a column) labels still touch, so overlaps are counted only
    for charts above that floor.
    """
    formulas = page.evaluate(FORMULAS_JS)
    assert formulas and all(f["overflow"] <= 1 for f in formulas), formulas
    assert page.evaluate(TRUNCATED_JS) == []
    drawn = page.evaluate(CHARTS_JS)
    for chart in drawn:
        assert chart["overflow"] <= 1, f"{chart['title']!r} overflows its container by {chart['overflow']} px"
        assert chart["titleOverflow"] <= 1, f"{chart['title']!r}: the title runs {chart['titleOverflow']} px past"
        if not (present and chart["xsizes"] and min(chart["xsizes"]) <= MIN_TICK_PX):
            assert chart["overlaps"] == 0, f"{chart['title']!r}: {chart['overlaps']} x labels overlap"
        if present:
            assert set(chart["categories"]) <= set(chart["xticks"]), f"{chart['title']!r} leaves out x labels"
            assert min(chart["ysizes"] or [PRESENT_FONT_PX]) >= PRESENT_FONT_PX, (chart["title"], chart["ysizes"])
            assert min(chart["xsizes"] or [MIN_TICK_PX]) >= MIN_TICK_PX, (chart["title"], chart["xsizes"])
    grids = [c for c in drawn if c["title"].startswith("Layer ") and ": all " in c["title"]]
    for grid in grids:  # the head grid labels every token in either mode
        assert set(grid["categories"]) <= set(grid["xticks"]), grid["title"]
    return drawn


@needs_reversal
def test_the_sidebar_starts_narrow(app_url, page, browser_log):
    """A fresh server's first session still gets Streamlit's 300 px: its first message lists the pages/
    folder (app_lib.streamlit_internals), so the sidebar is drawn before app.py's page config arrives and
    keeps the width it started with. Every later session starts at SIDEBAR_PX."""
    open_app(page, f"{app_url}/")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        open_app(page, f"{app_url}/")
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert abs(sidebar.bounding_box()["width"] - SIDEBAR_PX) <= 1, (width, sidebar.bounding_box())
    assert_clean_app(page, browser_log)


@needs_reversal
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("present", [False, True])
@pytest.mark.parametrize("path", ["attention_steps", "heatmaps", "kv_cache"])
def test_pages_fit_their_width(app_url, page, browser_log, artifacts_dir, path, width, present):
    open_page(page, app_url, path, f"checkpoint={REVERSAL}" + ("&present=true" if present else ""), width)
    drawn = assert_fits(page, present)
    assert len(drawn) >= CHARTS[path]
    if path == "heatmaps":
        frames = bertviz_frames(page)
        model = frames[1].locator("body").evaluate(f"() => ({FRAME_JS})()")
        assert model["overflow"] <= 1 and model["rightmost"] <= model["width"] and not model["scrolls"], model
        heads = next(c["heads"] for c in SHIPPED if c["name"] == REVERSAL)
        assert str(heads - 1) in model["heads"], "the last head's number is drawn"
    if width == 800:
        full_screenshot(page, artifacts_dir / "layout" / f"{path}-800-{'present' if present else 'normal'}.png",
                        width)
    assert_clean_app(page, browser_log)


@pytest.mark.skipif("reversal-rope" not in SHIPPED_NAMES, reason="no reversal-rope")
@pytest.mark.parametrize("path, query", [("positional", "checkpoint=reversal-rope"), ("compare_attention", "")])
def test_long_formulas_wrap_at_800(app_url, page, browser_log, path, query):
    open_page(page, app_url, path, query, 800)
    assert_fits(page, present=False)
    assert_clean_app(page, browser_log)


@needs_dates
@pytest.mark.parametrize("width", WIDTHS)
def test_cross_attention_opens_bertviz_on_cross_and_labels_every_source_token(app_url, page, browser_log,
                                                                              artifacts_dir, width):
    open_page(page, app_url, "heatmaps", f"checkpoint={DATES}&attention=cross", width)
    drawn = assert_fits(page, present=False)
    grid = next(c for c in drawn if c["title"].startswith("Layer 0: all"))
    assert grid["categories"] and set(grid["categories"]) <= set(grid["xticks"])  # every source token
    head, model = (frame.locator("body").evaluate(f"() => ({FRAME_JS})()") for frame in bertviz_frames(page))
    assert head["attention"] == model["attention"] == "Cross", (head["attention"], model["attention"])
    assert model["overflow"] <= 1 and not model["scrolls"], model
    assert page.get_by_text("A row is one step of writing the answer").is_visible()
    full_screenshot(page, artifacts_dir / "layout" / f"heatmaps-dates-cross-{width}.png", width)
    assert_clean_app(page, browser_log)
