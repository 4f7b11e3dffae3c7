"""Plotly figures comparing MHA, GQA and MQA. Pure functions: no Streamlit here.

Legend: T tokens, H query heads, Hkv key/value heads, G = H / Hkv query heads per key/value head.
Labels follow viz/panels.py: unique ("3:the") and HTML-escaped for plotly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from explain.cache import CalculatorResult
from explain.compare import FamilyQuality
from explain.labels import ACCURACY_POSITION_AXIS, reversal_axis
from model.attention import AttentionTrace
from model.config import kv_head_of
from model.decode_speed import SpeedPoint

from .figures_experiments import ANNOTATED_TOP
from .figures_generation import VARIANT_COLOURS, variant_colour
from .panels import (
    BLUE,
    CATEGORICAL,
    MASKED_COLOR,
    Panel,
    PanelGrid,
    allowed_matrix,
    heatmap_spec,
    plotly_labels,
    to_numpy,
)

GROUP_COLOURS = CATEGORICAL


def plot_grouped_heads(att: AttentionTrace, labels: Sequence[str], title: str) -> go.Figure:
    """One layer's heads side by side, (H, T, T); heads sharing a K/V head sit on one coloured band."""
    values = to_numpy(att.weights[0])  # (H, T, T)
    n_heads, n_kv_heads = att.q.shape[1], att.k.shape[1]
    group = n_heads // n_kv_heads
    titles = [f"q head {h} → K/V {kv_head_of(h, n_heads, n_kv_heads)}" for h in range(n_heads)]
    grid = PanelGrid(1, n_heads, titles, horizontal_spacing=0.02)
    allowed = allowed_matrix(att.mask, *att.weights.shape[1:])  # (H, T, T)
    for h in range(n_heads):
        panel = Panel(values[h], titles[h], labels, labels, allowed[h], signed=False)
        grid.add_trace(h, heatmap_spec(panel, show_scale=h == 0))
        grid.style(h, x=dict(type="category", showticklabels=False, showgrid=False),  # no lines over masked cells
                   y=dict(type="category", autorange="reversed", showticklabels=h == 0, showgrid=False))
    for g in range(n_kv_heads):
        first, last = grid.x_domain(g * group), grid.x_domain((g + 1) * group - 1)
        colour = GROUP_COLOURS[g % len(GROUP_COLOURS)]
        grid.shapes.append(dict(type="rect", xref="paper", yref="paper", x0=first[0] - 0.006, x1=last[1] + 0.006,
                                y0=-0.06, y1=1.0, fillcolor=colour, opacity=0.25, line={"width": 0}, layer="below"))
        for h in range(g * group, (g + 1) * group):
            grid.annotations[h]["font"] = {"color": colour, "size": 12}
        grid.annotations.append(dict(xref="paper", yref="paper", x=(first[0] + last[1]) / 2, y=-0.1, showarrow=False,
                                     text=f"share K/V head {g}", font={"color": colour, "size": 13}))
    fig = grid.figure(title=html.escape(title), height=max(260, min(420, 16 * len(labels) + 150)),
                      plot_bgcolor=MASKED_COLOR, margin={"l": 60, "r": 30, "t": 80, "b": 60})
    return fig


def plot_cache_sizes(results: Sequence[CalculatorResult], context: int, unit: str = "GiB",
                     divisor: float = 1024**3) -> go.Figure:
    """Total KV-cache size of the MHA, GQA and MQA versions of one model shape."""
    names = [r.label for r in results]
    sizes = [r.total_bytes / divisor for r in results]
    fig = go.Figure(go.Bar(x=[html.escape(n) for n in names], y=sizes, marker_color=[variant_colour(n) for n in names],
                           text=[f"{s:,.2f} {unit}" for s in sizes], textposition="outside",
                           hovertemplate="%{x}<br>%{y:,.3f} " + unit + "<extra></extra>"))
    fig.update_layout(title=f"KV cache at {context:,} tokens", height=320, margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      yaxis={"title": unit, "rangemode": "tozero"}, xaxis={"type": "category"})
    return fig


def plot_decode_speed(points: Sequence[SpeedPoint]) -> go.Figure:
    """Measured tokens per second with the cache, by context length, one line per variant."""
    fig = go.Figure()
    for variant in dict.fromkeys(p.variant for p in points):
        mine = [p for p in points if p.variant == variant]
        fig.add_trace(go.Scatter(
            x=[p.context for p in mine], y=[p.tokens_per_s for p in mine], mode="lines+markers",
            name=html.escape(f"{variant} ({mine[0].n_kv_heads} K/V heads)"),
            line={"color": VARIANT_COLOURS.get(variant)},
            customdata=[p.cache_bytes / 1024**2 for p in mine],
            hovertemplate="context %{x}<br>%{y:,.0f} tokens/s<br>cache %{customdata:.1f} MiB<extra></extra>"))
    fig.update_layout(title="Decode speed with the KV cache (measured here, on this machine)", height=340,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      xaxis={"title": "tokens already in the cache", "type": "log",
                                 "tickvals": sorted({p.context for p in points})},
                      yaxis={"title": "generated tokens per second", "rangemode": "tozero"})
    return fig


def plot_position_accuracy(quality: FamilyQuality) -> go.Figure:
    """Accuracy by position, one line per model (the reversal models' quality, side by side).

    The axis is ACCURACY_POSITION_AXIS with labels.reversal_axis's ticks, as on every page.
    """
    if quality.n is None or quality.chance is None:
        raise ValueError(f"the {quality.family} family has no accuracy by position (only the reversal has).")
    n, chance = quality.n, quality.chance
    ticks = plotly_labels(reversal_axis(n, chance).ticks)
    fig = go.Figure()
    for result in quality.measured:
        if len(result.accuracy_by_position) != len(ticks):
            raise ValueError(f"{result.name}: {len(result.accuracy_by_position)} accuracies for a reversal of n = {n}, "
                             f"which scores {len(ticks)} positions.")
        variant = next((v for v in VARIANT_COLOURS if v.lower() in result.name.lower()), None)
        fig.add_trace(go.Scatter(x=ticks, y=list(result.accuracy_by_position), mode="lines+markers",
                                 name=html.escape(result.name), line={"color": VARIANT_COLOURS.get(variant)}))
    fig.add_vrect(x0=n - 1.5, x1=len(ticks) - 0.5, fillcolor=BLUE, opacity=0.08,
                  line_width=0, annotation_text="the reversal (determined)", annotation_position="top left")
    fig.add_hline(y=chance, line={"dash": "dot", "color": "#888"}, annotation_text="chance")
    fig.update_layout(title="Accuracy by position on fresh sequences", height=320, margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      xaxis={"title": ACCURACY_POSITION_AXIS, "type": "category"},
                      yaxis={"title": "accuracy", "range": [0, ANNOTATED_TOP], "tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1]})
    return fig
