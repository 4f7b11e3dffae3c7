"""Plotly figures of rotary position embeddings and multi-head latent attention. Pure functions: no Streamlit.

Legend: L positions, T_q/T_k query/key tokens, Dh rotated width, C latent width, R rotary key width.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from explain.rope import LatentCacheRows, LatentRows, RopeView, RotationRows

from .panels import BLUE, VERMILLION, Panel, plot_panels, plotly_labels

SHOWN_POSITIONS = 8  # arrows drawn per vector: more would overlap into a fan


def plot_rope_rotation(view: RopeView) -> go.Figure:
    """Pair `view.pair` of q and of k as arrows from the origin, one per position, turning by theta per step."""
    fig = go.Figure()
    step = max(1, len(view.positions) // SHOWN_POSITIONS)
    for name, points, colour in (("q", view.q_pair, VERMILLION), ("k", view.k_pair, BLUE)):
        for i, position in enumerate(view.positions[::step]):
            x, y = points[position]
            fig.add_trace(go.Scatter(
                x=[0, x], y=[0, y], mode="lines+markers+text", line={"color": colour, "width": 2},
                opacity=0.35 + 0.65 * (1 - i / SHOWN_POSITIONS), marker={"size": [0, 8]},
                text=["", f"{name}@{position}"], textposition="top center", showlegend=i == 0,
                name=html.escape(f"{name} ({view.query_token if name == 'q' else view.key_token})"),
                hovertemplate=f"{name} at position {position}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>"))
    reach = float(max(np.abs(view.q_pair).max(), np.abs(view.k_pair).max(), 1e-6)) * 1.25
    fig.update_layout(
        title=f"Pair {view.pair} (coordinates {view.pair} and {view.pair + view.rotated_width // 2}) turns "
              f"{view.turns_per_position}", height=460, margin={"l": 50, "r": 20, "t": 60, "b": 50},
        xaxis={"range": [-reach, reach], "title": f"coordinate {view.pair}", "zeroline": True},
        yaxis={"range": [-reach, reach], "title": f"coordinate {view.pair + view.rotated_width // 2}",
               "scaleanchor": "x", "zeroline": True})
    return fig


def plot_rope_scores(view: RopeView) -> go.Figure:
    """q · k after rotation against the distance between them, from two starting positions: the lines coincide."""
    fig = go.Figure()
    for curve, dash in zip(view.curves, ("solid", "dot")):
        fig.add_trace(go.Scatter(x=list(curve.distances), y=list(curve.scores), mode="lines+markers",
                                 line={"dash": dash}, name=f"k at position {curve.start}",
                                 hovertemplate="distance %{x}<br>q · k = %{y:.4f}<extra></extra>"))
    fig.update_layout(title="Score of the same q and k by their distance (q position − k position)", height=360,
                      xaxis_title="distance", yaxis_title="q · k after rotation",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def plot_rotation_rows(rows: RotationRows, q_labels: Sequence[str], k_labels: Sequence[str]) -> go.Figure:
    """q and k of one head before and after RoPE (rows: tokens, columns: the rotated coordinates)."""
    plotly_labels(q_labels)
    return plot_panels([Panel(rows.q_before, "q before", q_labels, None), Panel(rows.q_after, "q rotated", q_labels, None),
                        Panel(rows.k_before, "k before", k_labels, None), Panel(rows.k_after, "k rotated", k_labels, None)],
                       "RoPE turns each token's q and k by its position (pairs i and i + Dh/2)")


def plot_latent_rows(rows: LatentRows, labels: Sequence[str], head: int) -> go.Figure:
    """MLA: the cached latent c_KV, the head's K and V projected up from it, and the shared rotary key."""
    plotly_labels(labels)
    panels = [Panel(rows.latent, f"c_KV (cached, {rows.latent_width})", labels, None),
              Panel(rows.keys, f"K of head {head} = W_UK c_KV", labels, None),
              Panel(rows.values, f"V of head {head} = W_UV c_KV", labels, None)]
    if rows.rotary_width:
        panels.append(Panel(rows.rotary_key, f"rotary key (cached, {rows.rotary_width})", labels, None))
    return plot_panels(panels, "Multi-head latent attention: one small latent per token, keys and values from it")


def plot_cache_lines(tokens: Sequence[int], lines: Sequence[tuple[str, Sequence[int]]]) -> go.Figure:
    """Cache bytes against tokens, one line per kind of attention (the MLA line beside MHA/GQA/MQA)."""
    fig = go.Figure()
    for name, values in lines:
        fig.add_trace(go.Scatter(x=list(tokens), y=[v / 1024 for v in values], mode="lines", name=html.escape(name)))
    fig.update_layout(title="Cache size by tokens", xaxis_title="tokens", yaxis_title="KiB", height=320)
    return fig


def plot_latent_cache(rows: LatentCacheRows, labels: Sequence[str]) -> go.Figure:
    """An MLA layer's cache: one row per token, the latent c_KV and the rotary key side by side."""
    plotly_labels(labels)
    panels = [Panel(rows.latent, "c_KV", labels, None)]
    if rows.rotary_key.shape[1]:
        panels.append(Panel(rows.rotary_key, "rotary key", labels, None))
    return plot_panels(panels, rows.title)
