"""Presentation mode: one restyling of any figure, for a projector at the back of a room. No Streamlit here.

`present(fig)` returns a restyled copy; the UI applies it in one place (app_lib.ui.chart), so no page
styles its own figures. What it does, for every figure:
- tick labels, axis titles, legends and subplot titles at least PRESENT_FONT_PX, in near-black;
- every category labelled (plotly skips labels when it thinks they crowd: tickvals lists them all); x labels
  as large as their columns allow on an 800-pixel screen, turned by plotly as far as its space needs;
- matrices of at most MAX_ANNOTATED x MAX_ANNOTATED print their values in the cells, in a font small enough
  for the widest value to fit its cell on an 800-pixel screen, unless that is below MIN_CELL_PX;
- weights (the [0, 1] "Blues" scale) get PRESENT_WEIGHTS_SCALE, on which 0.1 is a clear light blue;
- titles wrapped to fit a narrow chart (plotly cuts them off); no figure taller than MAX_HEIGHT_PX.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from .panels import WEIGHTS_SCALE

PRESENT_FONT_PX = 18
CELL_FONT_PX = 13
CELL_FORMAT = "%{z:.2~f}"  # d3: two decimals, trailing zeros dropped ("0.97", "0.1", "0")
TEXT_COLOUR = "#111111"
MAX_HEIGHT_PX = 720
TITLE_CHARS, LINE_PX = 44, 28  # a presentation title fits a 500-pixel chart (800-pixel screen) when wrapped
NORMAL_TITLE_CHARS, NORMAL_LINE_PX = 60, 22  # the same in the normal look (plotly's 17-pixel titles)
MAX_ANNOTATED = 16
# The plot area of a full-width chart on an 800-pixel screen (the sidebar open): an x axis's labels are sized
# to fit there, so they never overlap on a projector at 150% zoom or half a laptop screen.
NARROW_PLOT_PX = 360  # measured: 364-377 px for the one-panel heatmaps at 800 px, 240-px sidebar
LABEL_ACROSS = 1.15  # a label turned upright takes about its font size x this across
MIN_TICK_PX = 9  # below this a label is unreadable anyway: many panels side by side keep at least this
# For x labels that must all show: plotly takes the first angle at which they do not overlap, in the space it
# has, so wide screens keep them level. Not -45: plotly's check let slanted labels touch (measured at 800 px).
TICK_ANGLES = [0, -90]
CHAR_EM = 0.62  # a digit's width in the sans-serif font, in font sizes
MIN_CELL_PX = 9
# White at 0, already a clear blue at 0.1 (the plain "Blues" scale is still near white there), dark at 1.
PRESENT_WEIGHTS_SCALE = [[0.0, "#ffffff"], [0.03, "#deebf7"], [0.1, "#9ecae1"], [0.3, "#4292c6"],
                         [0.6, "#2171b5"], [1.0, "#08306b"]]


BLUES = [[float(p), str(c)] for p, c in get_colorscale(WEIGHTS_SCALE)]


def present(fig: go.Figure) -> go.Figure:
    """A copy of `fig` restyled for presentation (large dark labels, every token, values in small matrices)."""
    fig = go.Figure(fig)
    font = {"size": PRESENT_FONT_PX, "color": TEXT_COLOUR}
    categories = _categories_by_axis(fig)
    for name in _axis_names(fig, categories):
        _axis(fig.layout[name], categories.get(name), font)
    fig.update_layout(font=font, legend_font=font, hoverlabel_font_size=PRESENT_FONT_PX)
    if fig.layout.title.text:
        fig.update_layout(title_font={"size": PRESENT_FONT_PX + 4, "color": TEXT_COLOUR})
    for note in fig.layout.annotations:
        note.update(font=font)
    _wrap_titles(fig, TITLE_CHARS, LINE_PX)
    if fig.layout.coloraxis.colorscale is not None:
        _colour_scale(fig.layout.coloraxis, "cmin", "cmax")
        fig.layout.coloraxis.colorbar.tickfont = font
    heatmaps = [t for t in fig.data if t.type == "heatmap" and t.name != "masked"]
    for trace in heatmaps:
        _heatmap(trace, font, _x_width(fig, trace))
    scales = {(t.zmin, t.zmax) for t in heatmaps}
    if len(heatmaps) > 1 and len(scales) == 1 and None not in next(iter(scales)):  # one shared scale: one bar
        shown = any(trace.showscale is not False for trace in heatmaps)
        for trace in heatmaps:
            trace.showscale = False
        heatmaps[-1].showscale = shown
    height = fig.layout.height
    fig.update_layout(height=min(int(height), MAX_HEIGHT_PX) if height else MAX_HEIGHT_PX)
    return fig


def fit_titles(fig: go.Figure) -> go.Figure:
    """A copy of `fig` whose title is wrapped to fit an 800-pixel screen's chart in the normal look."""
    fig = go.Figure(fig)
    _wrap_titles(fig, NORMAL_TITLE_CHARS, NORMAL_LINE_PX, subplot_titles=False)  # those fit at 800 px
    return fig


def _wrap_titles(fig: go.Figure, chars: int, line_px: int, subplot_titles: bool = True) -> None:
    """The title, and the subplot titles of panels side by side, wrapped at about `chars` characters across
    the figure; the top margin grows by line_px for each extra line."""
    extra_lines = 0
    if fig.layout.title.text:
        fig.layout.title.text = wrap(fig.layout.title.text, chars)
        extra_lines = fig.layout.title.text.count("<br>")
    rows = Counter(round(note.y or 0, 3) for note in fig.layout.annotations)  # panels in each row of panels
    across = max(rows.values(), default=1)
    for note in fig.layout.annotations if subplot_titles and across > 1 else ():
        if len(rows) == 1:  # one row grows into the top margin
            note.update(text=wrap(note.text or "", chars // across))
        else:  # a lower row's wrapped titles would cover the panels above: a smaller font instead
            fit = NARROW_PLOT_PX / across / (max(len(note.text or ""), 1) * CHAR_EM)
            note.font.size = int(min(note.font.size or PRESENT_FONT_PX, max(MIN_TICK_PX, fit)))
        extra_lines = max(extra_lines, (note.text or "").count("<br>") + (fig.layout.title.text or "").count("<br>"))
    if extra_lines:
        top = fig.layout.margin.t if fig.layout.margin.t is not None else 80
        fig.update_layout(margin_t=top + line_px * extra_lines)


def wrap(text: str, width: int) -> str:
    """Plotly text broken into lines of about `width` characters with <br> (plotly never wraps a title)."""
    if "<br>" in text or len(text) <= width:
        return text
    return "<br>".join(textwrap.wrap(text, max(width, 8), break_long_words=False))


def _axis(axis: Any, categories: list[str] | None, font: dict[str, Any]) -> None:
    """Large dark tick labels and title; a category axis lists every category, an x axis's labels fitted to
    their columns and turned as far as needed (tick_font_px)."""
    axis.update(tickfont=font, title_font=font, automargin=True)
    if categories and axis.type in (None, "category") and all(isinstance(c, str) for c in categories):
        axis.update(tickmode="array", tickvals=categories, ticktext=categories)
        if axis.plotly_name.startswith("xaxis"):
            width = (axis.domain[1] - axis.domain[0]) if axis.domain else 1.0
            axis.update(tickfont_size=tick_font_px(len(categories), width), tickangle=None,
                        autotickangles=TICK_ANGLES)


def tick_font_px(count: int, width: float = 1.0) -> int:
    """The x tick font size at which `count` labels, turned upright, fit side by side in `width` (a fraction)
    of an 800-pixel screen's chart: PRESENT_FONT_PX when they can, never below MIN_TICK_PX."""
    room = NARROW_PLOT_PX * width / max(count, 1)
    return int(min(PRESENT_FONT_PX, max(MIN_TICK_PX, room // LABEL_ACROSS)))


def _heatmap(trace: Any, font: dict[str, Any], width: float) -> None:
    """The presentation colour scale for weights, and the values in the cells of a small matrix (cell_font_px)."""
    _colour_scale(trace, "zmin", "zmax")
    rows, cols = _shape(trace)
    if 0 < max(rows, cols) <= MAX_ANNOTATED:
        size = cell_font_px(np.asarray(trace.z, dtype=float), width)
        if size is not None:
            trace.update(texttemplate=CELL_FORMAT, textfont_size=size)
    trace.update(colorbar_tickfont=font)


def cell_font_px(values: np.ndarray, width: float = 1.0) -> int | None:
    """The font size at which the widest value (as CELL_FORMAT prints it) fits its cell when the matrix
    spans `width` (a fraction) of an 800-pixel screen's chart: at most CELL_FONT_PX; None below MIN_CELL_PX."""
    finite = values[np.isfinite(values)]
    if values.ndim != 2 or not finite.size:
        return None
    widest = max(len(f"{v:.2f}".rstrip("0").rstrip(".")) for v in finite.ravel())  # d3's ".2~f"
    size = int(min(CELL_FONT_PX, NARROW_PLOT_PX * width / values.shape[1] / (widest * CHAR_EM)))
    return size if size >= MIN_CELL_PX else None


def _shape(trace: Any) -> tuple[int, int]:
    """A heatmap's (rows, columns); (0, 0) without z."""
    z = np.asarray(trace.z, dtype=float) if trace.z is not None else np.zeros((0, 0))
    return (z.shape[0], z.shape[1]) if z.ndim == 2 else (0, 0)


def _x_width(fig: go.Figure, trace: Any) -> float:
    """The fraction of the figure's width the trace's x axis spans (its domain)."""
    axis = fig.layout["xaxis" + (trace.xaxis or "x")[1:]]
    return (axis.domain[1] - axis.domain[0]) if axis.domain else 1.0


def _colour_scale(spec: Any, low: str, high: str) -> None:
    """The weights scale ([0, 1] Blues) swapped for PRESENT_WEIGHTS_SCALE; any other scale kept."""
    if spec[low] == 0.0 and spec[high] == 1.0 and _is_blues(spec.colorscale):
        spec.colorscale = PRESENT_WEIGHTS_SCALE


def _is_blues(scale: Any) -> bool:
    """True for plotly's expanded "Blues" scale (a figure's JSON holds the colours, not the name)."""
    try:
        return [[float(p), str(c)] for p, c in scale] == BLUES
    except (TypeError, ValueError):
        return False


def _categories_by_axis(fig: go.Figure) -> dict[str, list[str]]:
    """The text categories each axis shows ("xaxis2" -> [...]), in order of first appearance."""
    found: dict[str, list[str]] = {}
    for trace in fig.data:
        for letter in ("x", "y"):
            values = getattr(trace, letter, None)
            if values is None or isinstance(values, np.ndarray) and values.dtype.kind not in "OU":
                continue
            ref = getattr(trace, f"{letter}axis", None) or letter
            seen = found.setdefault(f"{letter}axis{ref[1:]}", [])
            seen.extend(v for v in list(values) if v not in seen)
    return found


def _axis_names(fig: go.Figure, categories: dict[str, list[str]]) -> list[str]:
    """Every axis of the figure: those its layout sets and those only its traces use ("xaxis", "yaxis2"...)."""
    names = [name for name in fig.layout.to_plotly_json() if name.startswith(("xaxis", "yaxis"))]
    return names + [name for name in categories if name not in names] + [
        name for name in ("xaxis", "yaxis") if name not in names and name not in categories]
