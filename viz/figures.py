"""Plotly figures of attention, from the tensors of a trace. Pure functions: no Streamlit here.

Legend: T_q query positions, T_k key positions, H query heads, Hkv key/value heads,
Dh d_head, D d_model, L layers.

Panels, labels and masks follow viz/panels.py: unique, escaped labels; masked cells grey, never zero.

Input tensors come with the batch dimension of a trace (B = 1); builders read batch 0.
"""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.attention import AttentionTrace

from .panels import (
    BLUE,
    GREEN,
    HIGHLIGHT,
    ORANGE,
    ROW_PX,
    SCORES_HOVER,
    VERMILLION,
    WEIGHTS_HOVER,
    Array,
    Hover,
    Panel,
    PanelGrid,
    allowed_matrix,
    panel_figure,
    plot_matrix,
    plot_panels,
    to_numpy,
)
from .style import TICK_ANGLES

EVERY_LABEL = {"dtick": 1, "tickfont": {"size": 10}}  # a category axis that labels every token, smaller
# Every token on the x axes too, turned by plotly only as far as its space needs (level when they fit).
EVERY_X_LABEL = EVERY_LABEL | {"tickangle": None, "autotickangles": TICK_ANGLES}
GRID_COLUMNS = 32  # key columns side by side in a head grid: more heads per row and their labels would crowd


def plot_head_grid(att: AttentionTrace, q_labels: Sequence[str], k_labels: Sequence[str], title: str,
                   highlight_head: int | None = None) -> go.Figure:
    """Softmax weights of every head of one layer as a grid of heatmaps (masked cells grey)."""
    return plot_layer_grid([att], q_labels, k_labels, title, layer_names=None, highlight_head=highlight_head)


def plot_layer_grid(atts: Sequence[AttentionTrace], q_labels: Sequence[str], k_labels: Sequence[str], title: str,
                    layer_names: Sequence[str] | None = None, highlight_head: int | None = None) -> go.Figure:
    """Weights of every layer (rows) and head (columns): one heatmap per (layer, head)."""
    n_heads = atts[0].weights.shape[1]
    names = layer_names or [f"layer {i}" for i in range(len(atts))]
    titles = [f"{name}, head {h}" if len(atts) > 1 else f"head {h}" for name in names for h in range(n_heads)]
    cols = min(n_heads, 4, max(2, GRID_COLUMNS // len(k_labels))) if len(atts) == 1 else n_heads
    grid_rows = -(-n_heads // cols) * len(atts) if len(atts) == 1 else len(atts)
    grid = PanelGrid(grid_rows, cols, titles, horizontal_spacing=0.04, vertical_spacing=min(0.12, 0.3 / grid_rows))
    for layer, att in enumerate(atts):
        weights = to_numpy(att.weights)[0]  # (H, T_q, T_k)
        allowed = allowed_matrix(att.mask, *weights.shape)
        for h in range(n_heads):
            index = layer * n_heads + h
            panel = Panel(weights[h], titles[index], q_labels, k_labels, allowed[h], signed=False,
                          hover=WEIGHTS_HOVER)
            grid.add_panel(panel, index, show_scale=index == 0, tick_labels=index % cols == 0,
                           x_tick_labels=index // cols + 1 == grid_rows)
            grid.style(index, x=EVERY_X_LABEL, y=EVERY_LABEL)  # plotly would skip every other token
    if highlight_head is not None and len(atts) == 1:
        grid.annotations[highlight_head]["font"] = dict(color=HIGHLIGHT, size=15)
    per_row = max(170, min(420, ROW_PX * len(q_labels) + 60))
    return panel_figure(grid, title, min(120 + per_row * grid_rows, 2400))


def plot_attention_input(x_query: Array, x_kv: Array, q_labels: Sequence[str], k_labels: Sequence[str],
                         cross: bool) -> go.Figure:
    """X, the (T x d_model) input of attention; for cross-attention also the encoder output it reads."""
    hover = Hover("token", "dimension", "x")
    panels = [Panel(to_numpy(x_query)[0], "X (decoder side: gives the queries)" if cross else "X", q_labels, None,
                    hover=hover)]
    if cross:
        panels.append(Panel(to_numpy(x_kv)[0], "encoder output (gives keys and values)", k_labels, None, hover=hover))
    return plot_panels(panels, "What enters attention: one row per token, d_model columns",
                       row_count=max(len(q_labels), len(k_labels)))


def plot_qkv(att: AttentionTrace, head: int, q_labels: Sequence[str], k_labels: Sequence[str],
             query: int | None = None, key: int | None = None) -> go.Figure:
    """Q (T_q x Dh) of one head and the K, V (T_k x Dh) of the key/value head it reads."""
    kv_head = head // (att.q.shape[1] // att.k.shape[1])
    panels = [
        Panel(to_numpy(att.q)[0, head], f"Q (head {head})", q_labels, None, highlight=(query, None),
              hover=Hover("query", "dimension", "q")),
        Panel(to_numpy(att.k)[0, kv_head], f"K (kv head {kv_head})", k_labels, None, highlight=(key, None),
              hover=Hover("key", "dimension", "k")),
        Panel(to_numpy(att.v)[0, kv_head], f"V (kv head {kv_head})", k_labels, None, highlight=(key, None),
              hover=Hover("key", "dimension", "v")),
    ]
    return plot_panels(panels, "Queries, keys and values: one row per token, d_head columns",
                       row_count=max(len(q_labels), len(k_labels)))


def plot_scores(att: AttentionTrace, head: int, q_labels: Sequence[str], k_labels: Sequence[str],
                query: int | None = None, key: int | None = None) -> go.Figure:
    """QK^T, divided by sqrt(d_head), then masked: the three steps before the softmax."""
    raw = to_numpy(att.raw_scores)[0, head]  # (T_q, T_k)
    scaled = to_numpy(att.scaled_scores)[0, head]
    allowed = allowed_matrix(att.mask, att.weights.shape[1], *raw.shape)[head]
    d_head = att.q.shape[-1]
    spot = (query, key)
    # One colour scale for all three panels, so that the division by sqrt(d_head) shows as paler colours.
    limit = float(np.abs(raw).max()) or 1.0
    panels = [
        Panel(raw, "QKᵀ", q_labels, k_labels, highlight=spot, limit=limit, hover=SCORES_HOVER),
        Panel(scaled, f"÷ √{d_head}", q_labels, k_labels, highlight=spot, limit=limit, hover=SCORES_HOVER),
        Panel(scaled, "mask applied (grey = masked)", q_labels, k_labels, allowed, highlight=spot, limit=limit,
              hover=SCORES_HOVER),
    ]
    return plot_panels(panels, f"Scores of head {head} on one colour scale: rows are queries, columns are keys")


def plot_attention_weights(att: AttentionTrace, head: int, q_labels: Sequence[str], k_labels: Sequence[str],
                           title: str, query: int | None = None, key: int | None = None) -> go.Figure:
    """Softmax weights of one head; each row sums to 1 over the allowed keys."""
    weights = to_numpy(att.weights)[0, head]
    allowed = allowed_matrix(att.mask, att.weights.shape[1], *weights.shape)[head]
    return plot_matrix(Panel(weights, f"head {head}", q_labels, k_labels, allowed, signed=False,
                             highlight=(query, key), hover=WEIGHTS_HOVER), title)


def plot_head_output(att: AttentionTrace, head: int, q_labels: Sequence[str], query: int | None = None) -> go.Figure:
    """weights x V: each query's mix of value vectors (T_q x Dh)."""
    out = to_numpy(att.head_outputs)[0, head]
    return plot_matrix(Panel(out, f"head {head} output", q_labels, None, highlight=(query, None),
                             hover=Hover("query", "dimension", "output")),
                       "Weights × V: each row is a weighted average of the rows of V")


def plot_concat_output(att: AttentionTrace, q_labels: Sequence[str], query: int | None = None) -> go.Figure:
    """All heads side by side (T_q x H*Dh), then the output projection W_O (T_q x D)."""
    concatenated = to_numpy(att.concatenated)[0]
    d_head = att.q.shape[-1]
    panels = [
        Panel(concatenated, f"concat of {att.q.shape[1]} heads", q_labels, None, highlight=(query, None),
              boundaries=d_head, hover=Hover("query", "dimension", "value")),
        Panel(to_numpy(att.output)[0], "× W_O = attention output", q_labels, None, highlight=(query, None),
              hover=Hover("query", "dimension", "output")),
    ]
    return plot_panels(panels, "Heads concatenated, then the output projection")


def plot_dot_product(q: np.ndarray, k: np.ndarray, title: str) -> go.Figure:
    """q and k dimension by dimension, and their products: the score is the sum of the bottom bars."""
    q, k = to_numpy(q), to_numpy(k)
    dims = list(range(q.shape[0]))
    products = q * k
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=["q and k, dimension by dimension",
                                        f"q × k (they sum to {products.sum():.4f})"])
    fig.add_trace(go.Bar(x=dims, y=q, name="q (query)", marker_color=BLUE), row=1, col=1)
    fig.add_trace(go.Bar(x=dims, y=k, name="k (key)", marker_color=ORANGE), row=1, col=1)
    colours = np.where(products >= 0, GREEN, VERMILLION).tolist()
    fig.add_trace(go.Bar(x=dims, y=products, name="q × k", marker_color=colours), row=2, col=1)
    fig.update_xaxes(title_text="dimension of the head", row=2, col=1)
    fig.update_layout(barmode="group", height=420, title=dict(text=html.escape(title)),
                      legend=dict(orientation="h", y=1.12), margin=dict(l=40, r=20, t=90, b=40))
    return fig
