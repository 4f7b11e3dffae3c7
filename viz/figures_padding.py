"""Figures of a padded batch: the ids, the padding and combined masks, and both rows' attention.

Pure functions from `explain.padding.PaddedBatch`; no Streamlit here. Padding is drawn as masked
(grey), as on every other heatmap: a pad column is not "allowed but ignored", it is not there.
Legend: B = 2 rows, T padded length, T_q query positions, T_k key positions, H heads.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from explain.padding import PaddedBatch
from explain.trace import AttentionKindName

from .panels import MASKED_COLOR, Panel, PanelGrid, allowed_matrix, figure_height, panel_figure, to_numpy

ROWS = ("row 0 (your input)", "row 1 (second input)")


def _side_by_side(panels: list[Panel], title: str, rows: int) -> go.Figure:
    """Panels in a row, each with its own row labels, one shared 0-1 colour scale at the right."""
    grid = PanelGrid(1, len(panels), [p.title for p in panels], horizontal_spacing=0.12)
    for i, panel in enumerate(panels):
        grid.add_panel(panel, i, show_scale=i == len(panels) - 1, colorbar_x=grid.x_domain(i)[1] + 0.01)
    return panel_figure(grid, title, figure_height(rows))


def plot_padded_ids(batch: PaddedBatch, title: str) -> go.Figure:
    """The batch as a table of ids (B x T): each cell shows its token and id; padding grey."""
    real = batch.real.astype(float)  # (B, T)
    text = np.array([[f"{html.escape(t)}<br>{i}" for t, i in zip(tokens, ids)]
                     for tokens, ids in zip(batch.tokens, batch.ids.tolist())], dtype=object)
    fig = go.Figure(go.Heatmap(z=real, x=list(range(real.shape[1])), y=list(ROWS), zmin=0, zmax=1,
                               colorscale=[[0, MASKED_COLOR], [1, "#c6dbef"]], showscale=False, text=text,
                               texttemplate="%{text}", hovertemplate="%{y}, column %{x}<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=230, title=dict(text=html.escape(title)), xaxis=dict(title="column", dtick=1),
                      margin=dict(l=140, r=20, t=60, b=40))
    return fig


def plot_padding_masks(batch: PaddedBatch, kind: AttentionKindName, title: str) -> go.Figure:
    """The padding mask (B x T, 1 = real token) and each row's combined mask for this kind of attention."""
    panels = [Panel(batch.real.astype(float), "padding mask (1 = real token)", list(ROWS), None, signed=False)]
    for row in range(2):
        combined = batch.combined_mask(kind, row)
        panels.append(Panel(combined.astype(float), f"row {row}: combined mask", batch.query_labels(kind, row),
                            batch.key_labels(kind, row), combined, signed=False))
    return _side_by_side(panels, title, max(len(batch.query_labels(kind, 0)), len(batch.query_labels(kind, 1)), 4))


def plot_padded_attention(batch: PaddedBatch, kind: AttentionKindName, layer: int, head: int,
                          title: str) -> go.Figure:
    """One head's weights for both rows of the batch; padded keys (and any fully masked query) grey."""
    panels = []
    for row in range(2):
        att = batch.attention(kind, layer, row)
        weights = to_numpy(att.weights)[0, head]  # (T_q, T_k)
        allowed = allowed_matrix(att.mask, att.weights.shape[1], *weights.shape)[head]
        panels.append(Panel(weights, ROWS[row], batch.query_labels(kind, row), batch.key_labels(kind, row),
                            allowed, signed=False))
    return _side_by_side(panels, title, max(len(batch.query_labels(kind, 0)), len(batch.query_labels(kind, 1))))
