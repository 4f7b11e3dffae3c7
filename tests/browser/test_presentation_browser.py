"""Issue 18 in Chromium: presentation mode at 1400 and 800 px, section links that scroll, labels in the SVG.

The server comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to
tests/artifacts/presentation/; look at them.
"""

from __future__ import annotations

import pytest

from viz.style import MIN_TICK_PX, PRESENT_FONT_PX

from . import test_app_browser as base
from .test_app_browser import SHIPPED, assert_clean_app, open_app
from .test_layout_800_browser import full_screenshot, settle

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REVERSAL = "reversal-mha"
needs_reversal = pytest.mark.skipif(REVERSAL not in {c["name"] for c in SHIPPED}, reason="no reversal-mha")

# For every drawn plotly chart: its title, tick label font sizes and texts per axis, the categories its heatmaps
# use, and whether the chart's SVG is wider than the element that holds it.
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const title = String((plot.layout.title || {}).text || '').replace(/<[^>]*>/g, '');
    // tick labels of every subplot (plotly's groups .xtick, .x2tick ... sit inside .xaxislayer-above)
    const ticks = axis => [...plot.querySelectorAll(`.${axis}axislayer-above text`)]
        .filter(t => t.textContent.trim() !== '');
    const size = t => parseFloat(getComputedStyle(t).fontSize);
    const colours = [...ticks('x'), ...ticks('y')].map(t => getComputedStyle(t).fill);
    const svg = plot.querySelector('.main-svg');
    const box = plot.getBoundingClientRect(), holder = plot.closest('[data-testid="stElementContainer"]')
        || plot.parentElement;
    const heat = (plot._fullData || []).filter(t => t.type === 'heatmap' && t.name !== 'masked');
    return {title, xsizes: ticks('x').map(size), ysizes: ticks('y').map(size), colours,
            xticks: ticks('x').map(t => t.textContent), yticks: ticks('y').map(t => t.textContent),
            rows: heat.length ? Array.from(heat[0].y || []) : [], cols: heat.length ? Array.from(heat[0].x || []) : [],
            cellTexts: plot.querySelectorAll('g.heatmaplayer text, .hm text, text.textpoint').length,
            height: box.height,
            overflow: svg ? svg.getBoundingClientRect().width - holder.getBoundingClientRect().width : 0};
})"""


def charts(page) -> list[dict]:
    return page.evaluate(CHARTS_JS)


def _open(page, path: str, query: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, f"{page.app_url}/{path}?{query}", charts=base.PAGES[path])
    settle(page)  # plotly finishes its layout after the script run


@needs_reversal
@pytest.mark.parametrize("width", [1400, 800])
@pytest.mark.parametrize("present", [False, True])
def test_heatmaps_readable_with_and_without_presentation_mode(app_url, page, browser_log, artifacts_dir, width,
                                                              present):
    page.app_url = app_url
    _open(page, "heatmaps", f"checkpoint={REVERSAL}" + ("&present=true" if present else ""), width)
    drawn = charts(page)
    assert drawn, "no chart drawn"
    one_head = next((c for c in drawn if c["title"].startswith("Layer 0, head 0")), None)
    assert one_head is not None, [c["title"] for c in drawn]
    for chart in drawn:
        assert chart["overflow"] <= 1, f"{chart['title']!r} overflows its container by {chart['overflow']} px"
    grid = next(c for c in drawn if c["title"].startswith("Layer 0: all"))
    assert set(grid["yticks"]) == set(grid["rows"]) and set(grid["xticks"]) == set(grid["cols"])  # every token
    assert len(grid["xticks"]) % len(grid["cols"]) == 0  # ... under every panel of the bottom row
    if present:
        assert min(one_head["xsizes"] + one_head["ysizes"]) >= PRESENT_FONT_PX, one_head["xsizes"]
        assert all(c == "rgb(17, 17, 17)" for c in one_head["colours"]), set(one_head["colours"])
        assert one_head["yticks"] == one_head["rows"] and one_head["xticks"] == one_head["cols"]
        assert all(" → " in y for y in one_head["yticks"])  # rows say what they predict
        assert all(c["height"] <= 721 for c in drawn), [(c["title"], c["height"]) for c in drawn]
    else:
        assert min(one_head["xsizes"] + one_head["ysizes"]) < PRESENT_FONT_PX  # the normal look is unchanged
    full_screenshot(page, artifacts_dir / "presentation" / f"heatmaps-{width}-{'present' if present else 'normal'}.png",
                    width)
    assert_clean_app(page, browser_log)


@needs_reversal
def test_a_section_link_scrolls_to_its_section(app_url, page, browser_log, artifacts_dir):
    page.app_url = app_url
    _open(page, "attention_steps", f"checkpoint={REVERSAL}#4-softmax", 1400)
    heading_top = """() => {
        const target = [...document.querySelectorAll('[id]')].find(e => e.id.startsWith('4-softmax'));
        return target ? target.getBoundingClientRect().top : null;
    }"""
    # the scroll follows the charts above as they settle: wait until the heading sits near the top
    page.wait_for_function(f"() => {{ const top = ({heading_top})(); return top !== null && top >= 0 && top < 300; }}",
                           timeout=30_000)
    top = page.evaluate(heading_top)
    assert top is not None and 0 <= top < 300, f"the softmax heading is {top} px from the top"
    page.screenshot(path=str(artifacts_dir / "presentation" / "attention_steps-anchor.png"))
    assert_clean_app(page, browser_log)


@needs_reversal
@pytest.mark.parametrize("width", [1400, 800])
@pytest.mark.parametrize("path", ["attention_steps", "kv_cache"])
def test_every_chart_of_a_page_in_presentation_mode(app_url, page, browser_log, artifacts_dir, path, width):
    page.app_url = app_url
    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, f"{app_url}/{path}?checkpoint={REVERSAL}&present=true", charts=base.PAGES.get(path, 3))
    settle(page)
    drawn = charts(page)
    assert drawn
    for chart in drawn:  # x labels as large as their columns allow (viz.style.tick_font_px)
        assert chart["ysizes"] and min(chart["ysizes"]) >= PRESENT_FONT_PX, (chart["title"], chart["ysizes"][:5])
        assert min(chart["xsizes"] or [MIN_TICK_PX]) >= MIN_TICK_PX, (chart["title"], chart["xsizes"][:5])
        assert chart["height"] <= 721 and chart["overflow"] <= 1, chart["title"]
    full_screenshot(page, artifacts_dir / "presentation" / f"{path}-{width}-present.png", width)
    assert_clean_app(page, browser_log)
