"""Issue 18 in Chromium: presentation mode at 1400 and 800 px, section links that scroll, labels in the SVG.

The server comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to
tests/artifacts/presentation/; look at them.
"""

from __future__ import annotations

import pytest

from . import test_app_browser as base
from .test_app_browser import SHIPPED, assert_clean_app, open_app, screenshot

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REVERSAL = "reversal-mha"
needs_reversal = pytest.mark.skipif(REVERSAL not in {c["name"] for c in SHIPPED}, reason="no reversal-mha")

# For every drawn plotly chart: its title, tick label font sizes and texts per axis, the categories its heatmaps
# use, and whether the chart's SVG is wider than the element that holds it.
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const title = String((plot.layout.title || {}).text || '').replace(/<[^>]*>/g, '');
    const ticks = cls => [...plot.querySelectorAll(`g.${cls} text`)].filter(t => t.textContent.trim() !== '');
    const sizes = [...ticks('xtick'), ...ticks('ytick')].map(t => parseFloat(getComputedStyle(t).fontSize));
    const colours = [...ticks('xtick'), ...ticks('ytick')].map(t => getComputedStyle(t).fill);
    const svg = plot.querySelector('.main-svg');
    const box = plot.getBoundingClientRect(), holder = plot.closest('[data-testid="stElementContainer"]')
        || plot.parentElement;
    const heat = (plot._fullData || []).filter(t => t.type === 'heatmap' && t.name !== 'masked');
    return {title, sizes, colours, xticks: ticks('xtick').map(t => t.textContent),
            yticks: ticks('ytick').map(t => t.textContent),
            rows: heat.length ? Array.from(heat[0].y || []).length : 0,
            cols: heat.length ? Array.from(heat[0].x || []).length : 0,
            cellTexts: plot.querySelectorAll('g.heatmaplayer text, .hm text, text.textpoint').length,
            height: box.height,
            overflow: svg ? svg.getBoundingClientRect().width - holder.getBoundingClientRect().width : 0};
})"""


def charts(page) -> list[dict]:
    return page.evaluate(CHARTS_JS)


def _open(page, path: str, query: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, f"{page.app_url}/{path}?{query}", charts=base.PAGES[path])
    page.wait_for_timeout(1500)  # plotly finishes its layout after the script run


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
    assert len(grid["yticks"]) == grid["rows"] and len(grid["xticks"]) % grid["cols"] == 0  # every token, every panel
    if present:
        assert min(one_head["sizes"]) >= 18, one_head["sizes"]
        assert all(c == "rgb(17, 17, 17)" for c in one_head["colours"]), set(one_head["colours"])
        assert len(one_head["yticks"]) == one_head["rows"] and len(one_head["xticks"]) == one_head["cols"]
        assert all(" → " in y for y in one_head["yticks"])  # rows say what they predict
        assert all(c["height"] <= 721 for c in drawn), [(c["title"], c["height"]) for c in drawn]
    else:
        assert min(one_head["sizes"]) < 18  # the normal look is unchanged
    screenshot(page, artifacts_dir / "presentation" / f"heatmaps-{width}-{'present' if present else 'normal'}.png",
               width=width, max_height=4000)
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
    page.wait_for_timeout(1500)
    drawn = charts(page)
    assert drawn
    for chart in drawn:
        assert chart["sizes"] and min(chart["sizes"]) >= 18, (chart["title"], chart["sizes"][:5])
        assert chart["height"] <= 721 and chart["overflow"] <= 1, chart["title"]
    screenshot(page, artifacts_dir / "presentation" / f"{path}-{width}-present.png", width=width)
    assert_clean_app(page, browser_log)
