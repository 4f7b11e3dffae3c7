"""viz.style.present: the presentation restyling applied by app_lib.ui.chart."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explain.labels import row_labels, token_labels
from viz.panels import Panel, plot_matrix
from viz.style import (
    CELL_FONT_PX,
    CELL_FORMAT,
    CHAR_EM,
    LABEL_ACROSS,
    MAX_HEIGHT_PX,
    MIN_CELL_PX,
    MIN_TICK_PX,
    NARROW_PLOT_PX,
    PRESENT_FONT_PX,
    PRESENT_WEIGHTS_SCALE,
    TICK_ANGLES,
    cell_font_px,
    fit_titles,
    present,
    tick_font_px,
)


def weights_figure(n: int) -> go.Figure:
    tokens = [str(i % 10) for i in range(n)]
    rows, cols = row_labels(tokens, tokens[1:] + ["0"], n // 2), token_labels(tokens, n // 2)
    return plot_matrix(Panel(np.full((n, n), 0.1), "w", rows, cols, np.tril(np.ones((n, n), bool)), signed=False), "t")


def test_small_matrices_get_large_labels_every_token_and_their_values():
    original = weights_figure(12)
    fig = present(original)
    assert fig.layout.xaxis.tickfont.size >= PRESENT_FONT_PX and fig.layout.yaxis.tickfont.size >= PRESENT_FONT_PX
    assert list(fig.layout.xaxis.tickvals) == list(fig.data[-1].x)
    assert list(fig.layout.yaxis.tickvals) == list(fig.data[-1].y)
    assert fig.data[-1].texttemplate == CELL_FORMAT and fig.data[0].name == "masked"
    assert fig.data[0].texttemplate is None
    assert [list(step) for step in fig.data[-1].colorscale] == [list(step) for step in PRESENT_WEIGHTS_SCALE]
    assert original.layout.xaxis.tickfont.size is None  # a copy: the cached figure is left alone


def test_the_weights_scale_shows_a_tenth():
    at_tenth = dict(PRESENT_WEIGHTS_SCALE)[0.1]
    assert at_tenth != "#ffffff" and int(at_tenth[1:3], 16) < 0xC0  # a clear blue, not near white


def test_large_matrices_keep_their_cells_plain_and_no_chart_is_taller_than_a_screen():
    fig = present(weights_figure(30))
    assert fig.data[-1].texttemplate is None and fig.layout.height <= MAX_HEIGHT_PX
    assert len(fig.layout.yaxis.tickvals) == 30


def test_plain_figures_get_large_dark_axes():
    fig = present(go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"height": 2000, "title": "bars"}))
    assert fig.layout.xaxis.tickfont.size == PRESENT_FONT_PX and fig.layout.yaxis.tickfont.color == "#111111"
    assert fig.layout.height == MAX_HEIGHT_PX and fig.layout.title.font.size > PRESENT_FONT_PX


def test_panels_side_by_side_print_values_only_while_their_cells_stay_wide():
    from viz.panels import plot_panels

    def panels(n: int, count: int, value: float) -> go.Figure:
        return plot_panels([Panel(np.full((n, n), value), f"p{i}", None, None, signed=False) for i in range(count)],
                           "t")

    assert all(t.texttemplate == CELL_FORMAT for t in present(panels(5, 3, 1.0)).data)  # "1" fits a narrow cell
    assert all(t.texttemplate is None for t in present(panels(5, 3, 0.25)).data)  # "0.25" does not


def test_cell_values_are_sized_to_fit_their_cells_on_an_800_pixel_screen():
    assert cell_font_px(np.full((4, 4), 0.25)) == CELL_FONT_PX
    size = cell_font_px(np.full((15, 15), 0.25))
    assert MIN_CELL_PX <= size < CELL_FONT_PX and 15 * 4 * CHAR_EM * size <= NARROW_PLOT_PX  # "0.25" x 15 fit
    assert cell_font_px(np.full((16, 16), -0.25)) is None  # "-0.25" x 16 would need a font below MIN_CELL_PX
    assert cell_font_px(np.full((3, 3), np.nan)) is None


def test_x_labels_are_sized_to_fit_their_columns_and_turned_by_plotly():
    assert tick_font_px(12) == PRESENT_FONT_PX
    assert tick_font_px(60, width=0.3) == MIN_TICK_PX
    size = tick_font_px(30)
    assert MIN_TICK_PX < size < PRESENT_FONT_PX and 30 * size * LABEL_ACROSS <= NARROW_PLOT_PX
    fig = present(weights_figure(30))
    assert fig.layout.xaxis.tickfont.size == tick_font_px(30) and fig.layout.yaxis.tickfont.size == PRESENT_FONT_PX
    assert fig.layout.xaxis.tickangle is None and list(fig.layout.xaxis.autotickangles) == TICK_ANGLES
    assert len(fig.layout.xaxis.tickvals) == 30  # every token still labelled


def test_panels_on_one_shared_scale_keep_one_colour_bar():
    from viz.panels import plot_panels

    shared = present(plot_panels([Panel(np.eye(4), f"p{i}", None, None, limit=2.0) for i in range(3)], "t"))
    assert [t.showscale for t in shared.data] == [False, False, True]
    own = present(plot_panels([Panel(np.eye(4) * (i + 1), f"p{i}", None, None) for i in range(3)], "t"))
    assert all(t.showscale is not False for t in own.data)


def test_long_titles_wrap_in_the_normal_look_too():
    long_title = "Layer 0 cache: 4 key/value head(s) x 8 tokens x d_head 32, newest row(s) outlined"
    original = go.Figure(go.Bar(x=["a"], y=[1]), layout={"title": long_title, "margin": {"t": 60}})
    fig = fit_titles(original)
    assert fig.layout.title.text.replace("<br>", " ") == long_title and "<br>" in fig.layout.title.text
    assert fig.layout.margin.t > 60 and original.layout.title.text == long_title  # a copy
    short = fit_titles(go.Figure(layout={"title": "bars", "margin": {"t": 60}}))
    assert short.layout.title.text == "bars" and short.layout.margin.t == 60


def test_subplot_titles_wrap_only_in_one_row_of_panels():
    from viz.panels import plot_panels

    def titled(count: int, title: str) -> go.Figure:
        return plot_panels([Panel(np.eye(3), f"{title} {i}", None, None) for i in range(count)], "t")

    one_row = present(titled(4, "a long subplot title"))
    assert all("<br>" in note.text for note in one_row.layout.annotations)
    assert all("<br>" not in note.text for note in fit_titles(titled(4, "a long subplot title")).layout.annotations)
    grid = titled(4, "a long subplot title")
    for note, y in zip(grid.layout.annotations, (1.0, 1.0, 0.5, 0.5)):  # two rows of two
        note.y = y
    shown = present(grid).layout.annotations
    assert all("<br>" not in note.text and note.font.size < PRESENT_FONT_PX for note in shown)  # smaller instead
    assert all(2 * len(note.text) * CHAR_EM * note.font.size <= NARROW_PLOT_PX for note in shown)
