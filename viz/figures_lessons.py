"""Figures of a lesson's evidence: a labelled matrix as a heatmap, labelled bars as a bar chart.

Pure functions from explain.lesson_types records to plotly figures; no Streamlit here. Labels come in
unique ("3:the", explain.labels); marked cells (the right answer, the asked cell) are outlined in HIGHLIGHT.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from explain.lesson_types import BarsEvidence, Evidence, MatrixEvidence

from .panels import BLUE, HIGHLIGHT, Hover, Panel, PanelGrid, figure_height, panel_figure, plotly_labels


def plot_evidence(evidence: Evidence) -> go.Figure:
    """The figure of one piece of evidence, whichever kind it is."""
    if isinstance(evidence, MatrixEvidence):
        return plot_matrix_evidence(evidence)
    return plot_bars_evidence(evidence)


def plot_matrix_evidence(evidence: MatrixEvidence) -> go.Figure:
    """A heatmap, rows top to bottom; values in [0, 1] on the weights scale, others diverging around 0."""
    values = np.asarray(evidence.values, dtype=np.float64)  # (R, C)
    if values.shape != (len(evidence.row_labels), len(evidence.col_labels)):
        raise ValueError(f"{evidence.title}: a {values.shape} matrix with {len(evidence.row_labels)} row and "
                         f"{len(evidence.col_labels)} column labels.")
    unit_range = bool(values.size) and values.min() >= 0.0 and values.max() <= 1.0
    panel = Panel(values, evidence.title, evidence.row_labels, evidence.col_labels, signed=not unit_range,
                  hover=Hover(evidence.row_noun, evidence.col_noun, evidence.value_name))
    grid = PanelGrid(1, 1, [""], horizontal_spacing=0.02)
    grid.add_panel(panel, 0)
    for row, col in sorted(evidence.marked):
        grid.add_shape(0, {"type": "rect", "x0": col - 0.5, "x1": col + 0.5, "y0": row - 0.5, "y1": row + 0.5,
                           "line": {"color": HIGHLIGHT, "width": 3}})
    return panel_figure(grid, evidence.title, figure_height(values.shape[0]))


def plot_bars_evidence(evidence: BarsEvidence) -> go.Figure:
    """Labelled bars with the value printed on each, the axis titled with the value's name and unit."""
    if len(evidence.labels) != len(evidence.values):
        raise ValueError(f"{evidence.title}: {len(evidence.labels)} labels for {len(evidence.values)} values.")
    unit = f" ({evidence.unit})" if evidence.unit else ""
    text = [f"{v:,.0f}" if float(v).is_integer() else f"{v:,.3g}" for v in evidence.values]
    fig = go.Figure(go.Bar(x=plotly_labels(evidence.labels), y=list(evidence.values), text=text,
                           textposition="outside", marker_color=BLUE, cliponaxis=False,
                           hovertemplate=f"%{{x}}: %{{y:,.4g}}{html.escape(unit)}<extra></extra>"))
    top = max(evidence.values, default=0.0)
    bottom = min(0.0, 1.15 * min(evidence.values, default=0.0))  # negative bars (attention scores) go below 0
    y_axis = {"title": html.escape(evidence.value_name + unit), "range": [bottom, 1.15 * top if top > 0 else 1],
              "gridcolor": "#e5e5e5"}  # room above the tallest bar for its printed value
    fig.update_layout(title={"text": html.escape(evidence.title)}, height=380, plot_bgcolor="white", yaxis=y_axis,
                      xaxis={"type": "category"}, margin={"l": 60, "r": 20, "t": 60, "b": 80})
    return fig
