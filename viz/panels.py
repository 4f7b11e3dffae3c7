"""Heatmap panels and the grid that lays them out: the building blocks of every attention figure.

Pure functions and plain dicts: no Streamlit here. Conventions (see viz/figures.py):
- Token labels are passed in already unique ("3:the"): plotly merges equal category labels,
  so two "the" rows would silently become one. Every text is HTML-escaped for plotly, whose
  text rendering understands a few tags (<b>, <a href>, <br>...); a token like "<b>" must show as typed.
- Masked cells are NaN in the heatmap, with the hover text "masked", over a flat MASKED_COLOR
  layer (`masked_layer_spec`): drawn grey, never as a zero weight, which would read "allowed but ignored".
- Rows run top to bottom (position 0 at the top), like the matrices in the formulas.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from explain.labels import hover_name, hover_text, prompt_rows, same_tokens

# Okabe and Ito's colour-blind-safe palette: every categorical colour of the figures comes from here.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#7F7F7F")
CATEGORICAL = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, GREY)
MASKED_COLOR = "#bdbdbd"
WEIGHTS_SCALE = "Blues"
SIGNED_SCALE = "RdBu_r"
HIGHLIGHT = VERMILLION
PROMPT_LINE = "#222222"  # dashed: where the prompt ends and the model's own part begins
ROW_PX, MIN_HEIGHT, MAX_HEIGHT = 22, 260, 900
Array = np.ndarray | torch.Tensor  # what a figure accepts as numbers: a trace's tensors or the records' arrays


def to_numpy(values: Array | Sequence[float]) -> np.ndarray:
    """A float64 numpy copy of a tensor or array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=np.float64)


def plotly_labels(labels: Sequence[str]) -> list[str]:
    """Labels escaped for plotly's HTML-like text; refuses duplicates (they would merge)."""
    labels = [str(label) for label in labels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"axis labels must be unique, got duplicates in {labels!r}; prefix them with positions.")
    return [html.escape(label, quote=False) for label in labels]


def allowed_matrix(mask: Array | None, n_heads: int, t_q: int, t_k: int) -> np.ndarray:
    """A trace's mask (None or broadcastable to (B, H, T_q, T_k)) as a bool array (H, T_q, T_k)."""
    if mask is None:
        return np.ones((n_heads, t_q, t_k), dtype=bool)
    array = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask, dtype=bool)
    while array.ndim < 4:
        array = array[None]
    return np.broadcast_to(array, (array.shape[0], n_heads, t_q, t_k))[0].copy()


@dataclass(frozen=True)
class Hover:
    """What a panel's hover text calls its rows, columns and values: "query 12 '1' → key 2 '4': weight 0.935"."""

    row: str = "row"
    col: str = "column"
    value: str = "value"
    digits: int = 3


WEIGHTS_HOVER = Hover("query", "key", "weight")
SCORES_HOVER = Hover("query", "key", "score")


@dataclass(frozen=True)
class Panel:
    """One heatmap of a multi-panel figure. rows/cols: labels, or None for numbered dimensions."""

    values: np.ndarray  # (R, C)
    title: str
    rows: Sequence[str] | None = None
    cols: Sequence[str] | None = None
    allowed: np.ndarray | None = None  # (R, C) bool; False cells are drawn as masked
    signed: bool = True  # diverging colours around 0; False: weights in [0, 1]
    highlight: tuple[int | None, int | None] | None = None  # (row, col) outlined; None parts skipped
    boundaries: int | None = None  # draw a vertical line every this many columns (heads side by side)
    limit: float | None = None  # signed panels: colours span [-limit, limit] (panels that share one scale)
    hover: Hover = Hover()  # what the hover text calls rows, columns and values


def heatmap_trace(panel: Panel, show_scale: bool = True, colorbar_x: float | None = None) -> go.Heatmap:
    """The go.Heatmap of one panel, masked cells NaN with the hover text 'masked'."""
    return go.Heatmap(**heatmap_spec(panel, show_scale, colorbar_x))


def heatmap_spec(panel: Panel, show_scale: bool = True, colorbar_x: float | None = None) -> dict[str, Any]:
    """`heatmap_trace` as a plain dict, validated once with its whole figure (see `PanelGrid`)."""
    values = to_numpy(panel.values)
    if values.ndim != 2:
        raise ValueError(f"a heatmap needs a 2-D matrix, got shape {values.shape}.")
    rows, cols = _axis_labels(panel, values.shape)
    z = values.copy()
    allowed = np.ones(values.shape, dtype=bool) if panel.allowed is None else np.asarray(panel.allowed, dtype=bool)
    z[~allowed] = np.nan
    hovered = _hover(panel, values, allowed)
    colorbar = dict(thickness=10, len=0.85) | ({"x": colorbar_x, "xanchor": "left"} if colorbar_x is not None else {})
    if panel.signed and panel.limit is not None:
        scale = dict(colorscale=SIGNED_SCALE, zmin=-panel.limit, zmax=panel.limit)
    elif panel.signed:
        scale = dict(colorscale=SIGNED_SCALE, zmid=0.0)
    else:
        scale = dict(colorscale=WEIGHTS_SCALE, zmin=0.0, zmax=1.0)
    return dict(type="heatmap", z=z, x=cols, y=rows, hoverongaps=True, showscale=show_scale, colorbar=colorbar,
                name=html.escape(panel.title), **hovered, **scale)


def _hover(panel: Panel, values: np.ndarray, allowed: np.ndarray) -> dict[str, Any]:
    """Hover text naming what it shows: "query 12 '1' → key 2 '4': weight 0.935", or "...: masked".

    Cells are spelled out one by one only where a template over the tick labels cannot say it (masked cells,
    hover names unlike the ticks): a template keeps a T x d_model figure about 40% smaller for the browser.
    """
    names = panel.hover
    rows = [hover_name(r) for r in panel.rows] if panel.rows is not None else [str(i) for i in range(values.shape[0])]
    cols = [hover_name(c) for c in panel.cols] if panel.cols is not None else [str(j) for j in range(values.shape[1])]
    plain = all(n == str(r) for n, r in zip(rows, panel.rows or rows)) and all(
        n == str(c) for n, c in zip(cols, panel.cols or cols))
    if np.all(allowed) and (plain or panel.cols is None):
        row, col, value = (html.escape(n, quote=False) for n in (names.row, names.col, names.value))
        joint = " →" if plain else ","
        return dict(hovertemplate=f"{row} %{{y}}{joint} {col} %{{x}}: {value} %{{z:.{names.digits}f}}<extra></extra>")
    text = [[html.escape(hover_text(names.row, rows[i], names.col, cols[j], names.value,
                                    float(values[i, j]) if allowed[i, j] else None, names.digits), quote=False)
             for j in range(values.shape[1])] for i in range(values.shape[0])]
    return dict(customdata=np.array(text, dtype=object), hovertemplate="%{customdata}<extra></extra>")


def _axis_labels(panel: Panel, shape: tuple[int, ...]) -> tuple[list, list]:
    """The panel's row and column labels (escaped), or positions 0..n-1 where it has none."""
    n_rows, n_cols = shape
    rows = plotly_labels(panel.rows) if panel.rows is not None else list(range(n_rows))
    cols = plotly_labels(panel.cols) if panel.cols is not None else list(range(n_cols))
    if len(rows) != n_rows or len(cols) != n_cols:
        raise ValueError(f"{panel.title}: matrix is {n_rows} x {n_cols} but got {len(rows)} x {len(cols)} labels.")
    return rows, cols


def masked_layer_spec(panel: Panel) -> dict[str, Any] | None:
    """A flat grey heatmap under the masked cells (None when nothing is masked): NaN cells above show it."""
    if panel.allowed is None or np.all(panel.allowed):
        return None
    rows, cols = _axis_labels(panel, to_numpy(panel.values).shape)
    grey = np.where(np.asarray(panel.allowed, dtype=bool), np.nan, 1.0)
    return dict(type="heatmap", z=grey, x=cols, y=rows, colorscale=[[0, MASKED_COLOR], [1, MASKED_COLOR]],
                showscale=False, hoverinfo="skip", name="masked")


def plot_panels(panels: Sequence[Panel], title: str, row_count: int | None = None,
                shared_rows: bool = True) -> go.Figure:
    """Heatmaps side by side, each with its own subtitle, in one downloadable figure."""
    grid = PanelGrid(1, len(panels), [p.title for p in panels], horizontal_spacing=0.10 if len(panels) > 1 else 0.02)
    for i, panel in enumerate(panels):
        repeated = i > 0 and panel.rows is not None and same_tokens(panel.rows, panels[i - 1].rows or [])
        grid.add_panel(panel, i, colorbar_x=grid.x_domain(i)[1] + 0.005, tick_labels=not repeated)
    rows = row_count or max(to_numpy(p.values).shape[0] for p in panels)
    return panel_figure(grid, title, figure_height(rows))


def plot_matrix(panel: Panel, title: str) -> go.Figure:
    """One heatmap figure."""
    return plot_panels([panel], title)


class PanelGrid:
    """A rows x cols grid of subplots, built as one plotly dict and validated once.

    It lays the subplots out as `make_subplots` does (the same axis domains and subplot titles,
    tests/test_figures.py compares them), but as plain dicts: make_subplots, and per-subplot
    `update_xaxes`/`add_shape` calls, validate and search the whole figure on every call. That
    made building figures most of a page run's server time; one `go.Figure(spec)` at the end is
    several times cheaper for the same figure (benchmarks/RESULTS.md, "Load test").
    Subplots are numbered from 0, row by row.
    """

    def __init__(self, rows: int, cols: int, titles: Sequence[str], horizontal_spacing: float,
                 vertical_spacing: float = 0.0) -> None:
        self.rows, self.cols = rows, cols
        # The arithmetic of make_subplots, so that the domains come out the same to the last bit.
        widths = [(1.0 - horizontal_spacing * (cols - 1)) / cols] * cols
        heights = [(1.0 - vertical_spacing * (rows - 1)) / rows] * rows
        self._x = [(sum(widths[:c]) + c * horizontal_spacing, sum(widths[:c]) + c * horizontal_spacing + widths[c])
                   for c in range(cols)]
        bottom_up = [(sum(heights[:r]) + r * vertical_spacing, sum(heights[:r]) + r * vertical_spacing + heights[r])
                     for r in range(rows)]
        self._y = [(_clamp(y0), _clamp(y1)) for y0, y1 in reversed(bottom_up)]  # row 1 at the top
        self.axes: dict[str, dict[str, Any]] = {}  # "xaxis", "yaxis", "xaxis2"... -> properties
        self.data: list[dict[str, Any]] = []
        self.shapes: list[dict[str, Any]] = []
        for index in range(rows * cols):
            x_ref, y_ref = self.refs(index)
            self.axes["xaxis" + x_ref[1:]] = dict(anchor=y_ref, domain=list(self.x_domain(index)))
            self.axes["yaxis" + y_ref[1:]] = dict(anchor=x_ref, domain=list(self._y[index // cols]))
        # Subplot titles: annotations centred above each subplot; callers may restyle them.
        self.annotations = [dict(font=dict(size=16), showarrow=False, text=html.escape(text),
                                 x=sum(self.x_domain(index)) / 2, xanchor="center", xref="paper",
                                 y=self._y[index // cols][1], yanchor="bottom", yref="paper")
                            for index, text in enumerate(titles)]

    @staticmethod
    def refs(index: int) -> tuple[str, str]:
        """The axis references of subplot `index`: ("x", "y"), ("x2", "y2")..."""
        suffix = "" if index == 0 else str(index + 1)
        return "x" + suffix, "y" + suffix

    def x_domain(self, index: int) -> tuple[float, float]:
        """The horizontal extent (paper coordinates) of subplot `index`."""
        return self._x[index % self.cols]

    def style(self, index: int, x: dict[str, Any] | None = None, y: dict[str, Any] | None = None) -> None:
        """Set properties of subplot `index`'s x and y axes."""
        x_ref, y_ref = self.refs(index)
        self.axes["xaxis" + x_ref[1:]].update(x or {})
        self.axes["yaxis" + y_ref[1:]].update(y or {})

    def add_trace(self, index: int, trace: dict[str, Any]) -> None:
        """A trace (a plain dict with its "type") drawn on subplot `index`."""
        x_ref, y_ref = self.refs(index)
        self.data.append(trace | dict(xaxis=x_ref, yaxis=y_ref))

    def add_shape(self, index: int, shape: dict[str, Any]) -> None:
        """A shape in subplot `index`'s data coordinates."""
        x_ref, y_ref = self.refs(index)
        self.shapes.append(shape | dict(xref=x_ref, yref=y_ref))

    def add_panel(self, panel: Panel, index: int, tick_labels: bool = True, x_tick_labels: bool = True,
                  **trace_options: Any) -> None:
        """The panel's masked layer (if any) and heatmap on subplot `index`, its axes styled: category
        axes (labels never parsed as numbers or dates), rows top-down, outlines, head boundaries."""
        masked = masked_layer_spec(panel)
        for trace in ([masked] if masked is not None else []) + [heatmap_spec(panel, **trace_options)]:
            self.add_trace(index, trace)
        self.style(index, y=dict(type="category" if panel.rows is not None else "linear", autorange="reversed",
                                 showticklabels=tick_labels),
                   x=dict(type="category" if panel.cols is not None else "linear", showticklabels=x_tick_labels,
                          tickangle=-60 if panel.cols is not None else 0))
        shape = to_numpy(panel.values).shape
        if panel.highlight is not None:
            self._outline(index, panel.highlight, shape)
        self.prompt_lines(index, panel)
        if panel.boundaries:
            x_ref, y_ref = self.refs(index)
            for x in range(panel.boundaries, shape[1], panel.boundaries):
                self.shapes.append(dict(type="line", x0=x - 0.5, x1=x - 0.5, xref=x_ref, y0=0, y1=1,
                                        yref=f"{y_ref} domain", line=dict(color="black", width=1.5)))

    def prompt_lines(self, index: int, panel: Panel) -> None:
        """A dashed line where the prompt's rows (and columns) end and the model's own part begins."""
        x_ref, y_ref = self.refs(index)
        end_row = prompt_rows(panel.rows) if panel.rows is not None else None
        end_col = prompt_rows(panel.cols) if panel.cols is not None else None
        line = dict(color=PROMPT_LINE, width=2, dash="dash")
        if end_row is not None:
            self.shapes.append(dict(type="line", y0=end_row - 0.5, y1=end_row - 0.5, yref=y_ref, x0=0, x1=1,
                                    xref=f"{x_ref} domain", line=line))
        if end_col is not None:
            self.shapes.append(dict(type="line", x0=end_col - 0.5, x1=end_col - 0.5, xref=x_ref, y0=0, y1=1,
                                    yref=f"{y_ref} domain", line=line))

    def _outline(self, index: int, spot: tuple[int | None, int | None], shape: tuple[int, ...]) -> None:
        """Outline a picked row, column or cell (indices into the matrix) in the highlight colour."""
        r, c = spot
        if r is None and c is None:
            return
        y0, y1 = (r - 0.5, r + 0.5) if r is not None else (-0.5, shape[0] - 0.5)
        x0, x1 = (c - 0.5, c + 0.5) if c is not None else (-0.5, shape[1] - 0.5)
        self.add_shape(index, dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=HIGHLIGHT, width=3)))

    def figure(self, **layout: Any) -> go.Figure:
        """The go.Figure, with these layout properties on top of the grid's axes, titles and shapes."""
        spec = self.axes | dict(annotations=self.annotations, shapes=self.shapes) | layout
        return go.Figure(dict(data=self.data, layout=spec))


def panel_figure(grid: PanelGrid, title: str, height: int) -> go.Figure:
    """The figure of a grid of heatmap panels: title, white background, no grid lines, a height."""
    for axis in grid.axes.values():
        axis.update(showgrid=False, zeroline=False)
    return grid.figure(title=dict(text=html.escape(title)), plot_bgcolor="white",
                       margin=dict(l=60, r=30, t=80, b=60), height=height)


def _clamp(edge: float) -> float:
    """A domain edge a rounding error outside [0, 1] put back on it (as make_subplots does)."""
    return 0.0 if -0.01 < edge < 0.0 else 1.0 if 1.0 < edge < 1.01 else edge


def figure_height(rows: int) -> int:
    """A figure height that fits `rows` heatmap rows."""
    return int(np.clip(ROW_PX * rows + 160, MIN_HEIGHT, MAX_HEIGHT))
