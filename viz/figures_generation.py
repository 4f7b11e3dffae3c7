"""Plotly figures of generation with a KV cache. Pure functions: no Streamlit here.

Legend: T tokens in the cache, T_new tokens fed in a step, H query heads, Hkv key/value heads,
Dh head dim, V vocabulary size.
Labels follow viz/panels.py: unique ("3:the") and HTML-escaped for plotly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explain.cache import CacheCurve
from explain.labels import vocabulary_label

from .panels import (
    BLUE,
    GREEN,
    MASKED_COLOR,
    PURPLE,
    SCORES_HOVER,
    SIGNED_SCALE,
    VERMILLION,
    WEIGHTS_SCALE,
    Array,
    Hover,
    Panel,
    PanelGrid,
    heatmap_spec,
    plotly_labels,
    to_numpy,
)

VARIANT_COLOURS = {"MHA": BLUE, "GQA": GREEN, "MQA": VERMILLION, "MLA": PURPLE}
MEASURED_COLOUR = "#222222"
CHOSEN_COLOUR, KEPT_COLOUR, CUT_COLOUR, DRAWN_COLOUR = VERMILLION, BLUE, MASKED_COLOR, MEASURED_COLOUR
MAX_BARS, CUT_BARS = 40, 5  # bars for every kept token and a few cut ones, up to MAX_BARS (at least `top`)


def variant_colour(name: str, default: str = "#888") -> str:
    """The colour of a variant named "MHA ...", "GQA ..." or "MQA ..." (default for any other name)."""
    words = name.split(maxsplit=1)
    return VARIANT_COLOURS.get(words[0], default) if words else default


def plot_next_token(probabilities: Array, vocabulary: Sequence[str], chosen: int, top: int = 20,
                    title: str = "Next-token probabilities", kept: Array | None = None,
                    drawn: Array | None = None) -> go.Figure:
    """The most likely next tokens as bars: the chosen one orange, the kept ones (top-k/top-p) blue, the cut grey.

    `kept` (V,) marks the ids that may be drawn (None: all); `drawn` (V,) is what they are drawn from after
    the cut (renormalised), shown as dots where it differs from the bars. At least `top` bars are shown;
    when some tokens are cut, every kept one and a few cut ones, up to MAX_BARS.
    """
    probs = to_numpy(probabilities)
    if probs.ndim != 1 or len(vocabulary) != probs.shape[0]:
        raise ValueError(f"need probabilities (V,) and V tokens, got {probs.shape} and {len(vocabulary)} tokens.")
    allowed = np.ones(probs.shape, dtype=bool) if kept is None else np.asarray(to_numpy(kept), dtype=bool)
    n_kept = int(allowed.sum())
    cut_some = n_kept < probs.shape[0]
    shown = min(probs.shape[0], max(top, min(n_kept + CUT_BARS, MAX_BARS)) if cut_some else top)
    order = [int(i) for i in np.lexsort((-probs, ~allowed))[:shown]]  # kept first, each group most likely first
    if chosen not in order:
        order[-1] = chosen
    order.sort(key=lambda i: (not allowed[i], -probs[i]))
    labels = plotly_labels([vocabulary_label(i, vocabulary[i]) for i in order])
    fig = go.Figure()
    groups = [("chosen", CHOSEN_COLOUR, lambda i: i == chosen), ("kept", KEPT_COLOUR, lambda i: allowed[i]),
              ("cut (never drawn)", CUT_COLOUR, lambda i: not allowed[i])]
    placed: set[int] = set()
    for name, colour, member in groups:
        rows = [k for k, i in enumerate(order) if member(i) and i not in placed]
        placed.update(order[k] for k in rows)
        if rows:
            fig.add_trace(go.Bar(x=[labels[k] for k in rows], y=probs[[order[k] for k in rows]], name=name,
                                 marker_color=colour, hovertemplate="%{x}<br>p = %{y:.4f}<extra></extra>"))
    if drawn is not None:
        after = to_numpy(drawn)
        rows = [k for k, i in enumerate(order) if allowed[i]]
        if not np.allclose(after[allowed], probs[allowed]):
            fig.add_trace(go.Scatter(x=[labels[k] for k in rows], y=after[[order[k] for k in rows]], mode="markers",
                                     name="drawn from (kept, renormalised)", marker={"color": DRAWN_COLOUR, "size": 8},
                                     hovertemplate="%{x}<br>drawn with p = %{y:.4f}<extra></extra>"))
    suffix = "" if shown == probs.shape[0] else f" ({shown} of {probs.shape[0]} shown)"
    fig.update_layout(title=html.escape(title + suffix), yaxis={"title": "probability", "range": [0, 1.05]}, height=320,
                      barmode="overlay", legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right",
                                                 "yanchor": "bottom"},
                      xaxis={"type": "category", "title": "token (id in the vocabulary)", "categoryorder": "array",
                             "categoryarray": labels},
                      margin={"l": 60, "r": 20, "t": 80, "b": 80})
    return fig


def plot_grid(panels: Sequence[Sequence[Panel]], title: str, height_per_row: int, outline_rows: int = 0) -> go.Figure:
    """Rows of heatmap panels sharing one colour scale; the last `outline_rows` rows of each panel outlined."""
    n_rows, n_cols = len(panels), max(len(row) for row in panels)
    grid = PanelGrid(n_rows, n_cols, [p.title for row in panels for p in row], horizontal_spacing=0.03,
                     vertical_spacing=min(0.15, 0.4 / n_rows))
    signed = panels[0][0].signed
    extent = max(float(np.nanmax(np.abs(to_numpy(p.values)))) for row in panels for p in row) or 1.0
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            index = r * n_cols + c
            grid.add_trace(index, heatmap_spec(panel) | dict(coloraxis="coloraxis", showscale=False))
            grid.prompt_lines(index, panel)
            grid.style(index, x=dict(type="category", showticklabels=panel.cols is not None and r == n_rows - 1,
                                     showgrid=False),  # no white lines across the grey masked cells
                       y=dict(type="category", autorange="reversed", showticklabels=c == 0, showgrid=False))
            if outline_rows:
                length, width = to_numpy(panel.values).shape
                grid.add_shape(index, dict(type="rect", x0=-0.5, x1=width - 0.5, y0=length - outline_rows - 0.5,
                                           y1=length - 0.5, line={"color": CHOSEN_COLOUR, "width": 2}))
    scale = {"colorscale": SIGNED_SCALE, "cmid": 0.0, "cmin": -extent, "cmax": extent} if signed else {
        "colorscale": WEIGHTS_SCALE, "cmin": 0.0, "cmax": 1.0}
    fig = grid.figure(coloraxis=dict(colorbar={"thickness": 10, "len": 0.8}, **scale), title=html.escape(title),
                      height=100 + height_per_row * n_rows, plot_bgcolor=MASKED_COLOR,
                      margin={"l": 60, "r": 30, "t": 80, "b": 50})
    return fig


def _row_height(length: int) -> int:
    return int(np.clip(18 * length + 40, 140, 420))


def plot_prefill_scores(scaled_scores: Array, mask: Array | None, labels: Sequence[str], layer: int,
                        row_labels: Sequence[str] | None = None) -> go.Figure:
    """Every head's scaled scores of the prompt, masked cells grey: the causal matrix of the prefill.

    `labels` name the keys, and the queries too unless `row_labels` ("position:token → prediction") are given.
    """
    scores = to_numpy(scaled_scores)  # (H, T, T)
    allowed = None if mask is None else np.asarray(to_numpy(mask), dtype=bool)  # (T, T)
    queries = labels if row_labels is None else row_labels
    panels = [Panel(scores[h], f"head {h}", queries, labels, allowed, hover=SCORES_HOVER)
              for h in range(scores.shape[0])]
    rows = [panels[i : i + 4] for i in range(0, len(panels), 4)]
    return plot_grid(rows, f"Prefill, layer {layer}: QKᵀ/√d_head of the whole prompt at once (grey = masked)",
                     _row_height(len(labels)))


def plot_decode_row(weights: Array, key_labels: Sequence[str], query_label: str, layer: int,
                    kind: str = "Decode") -> go.Figure:
    """The one new query's softmax weights over all cached keys (H, 1, T): one row per head, no mask."""
    values = to_numpy(weights)[:, -1, :]  # (H, T)
    heads = [f"head {h}" for h in range(values.shape[0])]
    panel = Panel(values, f"query {query_label}: softmax weights", heads, key_labels, signed=False,
                  hover=Hover("head", "key", "weight"))
    title = f"{kind}, layer {layer}: the new token's query over all {values.shape[1]} cached keys"
    return plot_grid([[panel]], title, max(140, 26 * len(heads) + 60))


def plot_cache_tensors(keys: Array, values: Array, labels: Sequence[str], layer: int, new_rows: int = 1) -> go.Figure:
    """The layer's cached K and V, (Hkv, T, Dh) each: K on top, V below, a column per key/value head."""
    k, v = to_numpy(keys), to_numpy(values)
    n_kv, length, d_head = k.shape
    rows = [[Panel(k[g], f"K, kv head {g}", labels, None, hover=Hover("token", "dimension", "k")) for g in range(n_kv)],
            [Panel(v[g], f"V, kv head {g}", labels, None, hover=Hover("token", "dimension", "v")) for g in range(n_kv)]]
    title = (f"Layer {layer} cache: {n_kv} key/value head(s) × {length} tokens × d_head {d_head}, "
             f"newest row(s) outlined")
    return plot_grid(rows, title, _row_height(length), outline_rows=min(new_rows, length))


def plot_cache_growth(steps: Sequence[int], measured_bytes: Sequence[int], curves: Sequence[CacheCurve],
                      measured_name: str) -> go.Figure:
    """Cache bytes after every step: this model, measured, against the formula for MHA, GQA and MQA."""
    fig = go.Figure()
    largest = max([*measured_bytes, *(b for curve in curves for b in curve.bytes_by_step)], default=0)
    unit, scale = byte_unit(largest)
    for curve in curves:
        fig.add_trace(go.Scatter(x=list(steps), y=[b / scale for b in curve.bytes_by_step],
                                 name=html.escape(f"{curve.label} (formula)"),
                                 mode="lines+markers", marker={"size": 5, "symbol": "circle-open"},
                                 line={"dash": "dash", "color": variant_colour(curve.label)}))
    fig.add_trace(go.Scatter(x=list(steps), y=[b / scale for b in measured_bytes],
                             name=html.escape(f"{measured_name} (measured)"),
                             mode="lines+markers", line={"color": MEASURED_COLOUR, "width": 3}))
    fig.update_layout(title="KV-cache size after each step", height=340, margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      xaxis={"title": "step (0 = prefill)", "dtick": 1}, yaxis={"title": unit, "rangemode": "tozero"})
    return fig


def byte_unit(largest: float) -> tuple[str, int]:
    """The binary unit model.kv_math.format_bytes writes `largest` in, and its size: ("KiB", 1024)."""
    for power, unit in enumerate(("bytes", "KiB", "MiB", "GiB")):
        if largest < 1024 ** (power + 1):
            return unit, 1024 ** power
    return "TiB", 1024 ** 4


def whole_dtick(values: Sequence[float], ticks: int = 10) -> int:
    """A whole-number tick step giving at most about `ticks` ticks: never two ticks rounded to one label."""
    span = (max(values) - min(values)) if values else 0
    return max(1, -(-int(span) // ticks))


def plot_step_times(lengths: Sequence[int], cached_ms: Sequence[float], uncached_ms: Sequence[float]) -> go.Figure:
    """Measured time to produce each next token, with the cache and recomputing everything."""
    fig = go.Figure([
        go.Scatter(x=list(lengths), y=list(cached_ms), name="with the KV cache", mode="lines+markers",
                   line={"color": VARIANT_COLOURS["GQA"]}),
        go.Scatter(x=list(lengths), y=list(uncached_ms), name="without (whole sequence again)",
                   mode="lines+markers", line={"color": VARIANT_COLOURS["MQA"]}),
    ])
    fig.update_layout(title="Time per token, measured", height=320, margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      xaxis={"title": "tokens in the sequence", "tickformat": "d", "dtick": whole_dtick(lengths)},
                      yaxis={"title": "milliseconds", "rangemode": "tozero"})
    return fig
