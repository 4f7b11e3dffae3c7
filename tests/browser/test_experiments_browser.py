"""The experiment pages in Chromium with the network cut off: the heads-off grid changes the accuracy chart,
and the padded batch draws its pad columns masked (grey), on a GPT and on the encoder-decoder.

The server comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import pytest

from . import test_app_browser as base
from .test_app_browser import assert_clean_app, open_app, screenshot

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FIGURE_JS = """(prefix) => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(
        p => p.layout && p.layout.title
            && String(p.layout.title.text || '').replace(/<br>/g, ' ').replace(/<[^>]*>/g, '').includes(prefix));
    if (!plot) return null;
    // _fullData holds the arrays plotly decoded (numpy arrays arrive as typed-array specs in data)
    return (plot._fullData || plot.data).map(t => ({name: t.name || '', y: t.y ? Array.from(t.y) : null,
                                z: t.z ? Array.from(t.z, row => Array.from(row)) : null}));
}"""


def figure_data(page, title_part: str):
    """The traces (name, y, z) of the plotly chart whose title contains title_part, or None."""
    return page.evaluate(FIGURE_JS, title_part)


def test_the_heads_off_grid_changes_the_accuracy_chart(app_url, page, browser_log, artifacts_dir):
    open_app(page, app_url)  # a fresh server's first request is the home page (see test_app_browser.py)
    open_app(page, f"{app_url}/heads_off?checkpoint=reversal-mha", charts=2)
    before = figure_data(page, "Accuracy by position")[1]["y"]
    assert min(before[7:]) > 0.9  # intact: the reversed half is right
    page.get_by_role("button", name="All heads of layer 0 off").click()
    page.wait_for_function(f"""([prefix, before]) => {{
        const traces = ({FIGURE_JS})(prefix);
        return traces !== null && JSON.stringify(traces[1].y) !== JSON.stringify(before);
    }}""", arg=["Accuracy by position", before], timeout=60_000)  # the chart has changed
    after = figure_data(page, "Accuracy by position")[1]["y"]
    assert sum(after[7:]) / len(after[7:]) < 0.3  # layer 0 off: the reversed half falls towards chance
    page.wait_for_function("() => location.search.includes('off_L0_H3=true')", timeout=20_000)
    screenshot(page, artifacts_dir / "heads_off-layer0.png")
    assert_clean_app(page, browser_log)


@pytest.mark.parametrize("name, query, columns", [
    ("reversal-mha", "pad=left", "first"),  # row 1 (the shorter) is padded at the start
    ("reversal-mha", "pad=right", "last"),
    ("dates", "second=03.01.2001", "last"),  # sources pad on the right
])
def test_pad_columns_are_drawn_masked(app_url, page, browser_log, artifacts_dir, name, query, columns):
    open_app(page, f"{app_url}/heatmaps?checkpoint={name}&batch=true&{query}", charts=5)
    traces = figure_data(page, "pad columns masked")
    assert traces is not None
    weights = [t for t in traces if t["name"] != "masked"]
    greys = [t for t in traces if t["name"] == "masked"]
    assert len(weights) == 2 and greys, "the shorter row's pad columns have a grey layer under them"
    grey = greys[-1]["z"]  # the padded row's layer: 1 where masked, null where allowed
    assert grey and grey[0], f"no grey layer values: {greys[-1]}"
    pad_column = 0 if columns == "first" else len(grey[0]) - 1
    assert all(row[pad_column] == 1 for row in grey)  # every query sees the pad column as masked
    assert all(row[pad_column] is None or row[pad_column] != row[pad_column]  # null or NaN: no weight drawn
               for row in weights[1]["z"])  # row 1, the second input, is the shorter one
    screenshot(page, artifacts_dir / f"padding-{name}-{query.split('=')[1]}.png")
    assert_clean_app(page, browser_log)


@pytest.mark.parametrize("path, charts", [("logit_lens?checkpoint=reversal-mha", 2),
                                          ("hide_token?checkpoint=reversal-mha&hide=2:4", 2),
                                          ("hide_token?checkpoint=dates&hide=3:d&attention=cross", 2),
                                          ("logit_lens?checkpoint=dates", 2)])
def test_lens_and_hide_pages_render_offline(app_url, page, browser_log, artifacts_dir, path, charts):
    open_app(page, f"{app_url}/{path}", charts=charts)
    assert base.visible_chart_count(page) == charts
    screenshot(page, artifacts_dir / f"{path.split('?')[0]}-{path.split('checkpoint=')[1].split('&')[0]}.png")
    assert_clean_app(page, browser_log)
