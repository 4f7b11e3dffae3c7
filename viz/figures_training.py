"""Plotly figures of a Train-page run (reversal or dates). Pure functions: no Streamlit here.

Legend: L layers, H heads, T = 2n - 1 positions of the fixed reversal example, n half-length;
Tq queries and Tk keys of an attention map (dates' cross-attention: decoder inputs x source characters).
Events are model.training.TrainEvent records; curves and the loss floor are explain/training.py records.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explain.labels import ACCURACY_POSITION_AXIS, reversal_axis
from explain.training import AccuracyCurve, LossFloor
from model.training import TrainEvent

from .panels import BLUE, GREY, MASKED_COLOR, VERMILLION, Array, plotly_labels, to_numpy

FIRST_COLOUR, SECOND_COLOUR, CHANCE_COLOUR = VERMILLION, BLUE, GREY
MAX_POINTS = 300  # a line of 3,000 steps is thinned to this many points


def _thin(events: Sequence[TrainEvent]) -> list[TrainEvent]:
    """Every k-th event (and the last), so a long run still draws quickly."""
    if len(events) <= MAX_POINTS:
        return list(events)
    k = -(-len(events) // MAX_POINTS)
    return list(events[::k]) + ([events[-1]] if (len(events) - 1) % k else [])


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 300) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      xaxis={"title": "step", "rangemode": "tozero"}, yaxis={"title": y_title},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0, "xanchor": "left"})
    return fig


def plot_loss(step_events: Sequence[TrainEvent], floor: LossFloor | None = None) -> go.Figure:
    """Training loss of every step's batch, and the best possible loss as a line with its formula."""
    events = _thin(step_events)
    fig = go.Figure(go.Scatter(x=[e.step for e in events], y=[e.loss for e in events], mode="lines",
                               name="loss", line={"color": SECOND_COLOUR}))
    if floor is not None:
        fig.add_hline(y=floor.value, line={"dash": "dash", "color": CHANCE_COLOUR}, annotation_text=floor.formula,
                      annotation_position="top right")
        fig.update_yaxes(rangemode="tozero")
    return _layout(fig, "Loss (cross-entropy of the training batch)", "loss")


def plot_accuracy_curves(curves: Sequence[AccuracyCurve], chance: float | None, target: float | None) -> go.Figure:
    """Accuracy on fresh sequences by step: the line that says "learned" in blue, with chance and the stop mark."""
    others = iter((FIRST_COLOUR, CHANCE_COLOUR))
    fig = go.Figure([go.Scatter(x=list(c.steps), y=list(c.values), mode="lines+markers", name=c.name,
                                line={"color": SECOND_COLOUR if c.learned_metric else next(others, GREY)})
                     for c in curves])
    if chance is not None:
        fig.add_hline(y=chance, line={"dash": "dot", "color": CHANCE_COLOUR},
                      annotation_text=f"chance = 1/vocab = {chance:.3f}", annotation_position="bottom right")
    if target is not None:
        fig.add_hline(y=target, line={"dash": "dash", "color": SECOND_COLOUR}, annotation_text=f"learned at {target:.0%}",
                      annotation_position="bottom left")
    fig = _layout(fig, "Accuracy on fresh sequences", "accuracy", height=340)
    fig.update_yaxes(range=[0, 1.05])
    return fig


def plot_half_accuracy(eval_events: Sequence[TrainEvent], chance: float) -> go.Figure:
    """Accuracy on fresh sequences, first half (random symbols) vs second half (the reversal), by step."""
    steps = [e.step for e in eval_events]
    fig = go.Figure([
        go.Scatter(x=steps, y=[e.metrics["first_half_accuracy"] for e in eval_events], mode="lines+markers",
                   name="first half (random: nothing to learn)", line={"color": FIRST_COLOUR}),
        go.Scatter(x=steps, y=[e.metrics["second_half_accuracy"] for e in eval_events], mode="lines+markers",
                   name="second half (the reversal)", line={"color": SECOND_COLOUR}),
    ])
    fig.add_hline(y=chance, line={"dash": "dot", "color": CHANCE_COLOUR},
                  annotation_text=f"chance = 1/vocab = {chance:.3f}", annotation_position="bottom right")
    fig = _layout(fig, "Accuracy on fresh sequences", "accuracy", height=340)
    fig.update_yaxes(range=[0, 1.05])
    return fig


def plot_accuracy_by_position(accuracy: Sequence[float], n: int, chance: float, step: int) -> go.Figure:
    """Accuracy of each of the 2n - 1 predicted positions of the latest evaluation, coloured by half.

    Ticks and the note under the chart: labels.reversal_axis (the same axis on every page).
    """
    values = list(accuracy)
    ticks = reversal_axis(n, chance).ticks
    if len(values) != len(ticks):
        raise ValueError(f"a reversal of n = {n} scores {len(ticks)} positions, got {len(values)} accuracies.")
    colours = [FIRST_COLOUR if p < n - 1 else SECOND_COLOUR for p in range(len(values))]
    fig = go.Figure(go.Bar(x=plotly_labels(ticks), y=values, marker_color=colours,
                           hovertemplate="position %{x}<br>accuracy %{y:.3f}<extra></extra>"))
    fig.add_hline(y=chance, line={"dash": "dot", "color": CHANCE_COLOUR}, annotation_text="chance")
    fig.update_layout(title=f"Accuracy by position (step {step})", height=300,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50}, yaxis={"title": "accuracy", "range": [0, 1.05]},
                      xaxis={"type": "category", "title": ACCURACY_POSITION_AXIS})
    return fig


def plot_throughput(step_events: Sequence[TrainEvent]) -> go.Figure:
    """Scored tokens per second, averaged over the run so far."""
    events = _thin(step_events)
    fig = go.Figure(go.Scatter(x=[e.step for e in events], y=[e.tokens_per_s for e in events], mode="lines",
                               name="tokens/s", line={"color": CHANCE_COLOUR}))
    fig = _layout(fig, "Training speed", "tokens per second")
    fig.update_yaxes(rangemode="tozero")
    return fig


def plot_training_attention(weights: Array, labels: Sequence[str], step: int, causal: bool = True,
                            key_labels: Sequence[str] | None = None, what: str = "Attention") -> go.Figure:
    """Every layer (rows) and head (columns) of attention on the fixed example, (L, H, Tq, Tk), at one step.

    `labels` name the queries, `key_labels` the keys (default: the same, self-attention). One heatmap
    with grey gaps between the blocks (not one subplot per head): the page redraws it every second
    while training, and a single trace is many times cheaper to build.
    """
    values = to_numpy(weights)  # (L, H, Tq, Tk)
    n_layers, n_heads, length, width = values.shape
    if causal and length == width:
        values = np.where(np.tril(np.ones((length, length), dtype=bool)), values, np.nan)
    gap = 1
    z = np.full((n_layers * (length + gap) - gap, n_heads * (width + gap) - gap), np.nan)
    for layer in range(n_layers):
        for head in range(n_heads):
            r, c = layer * (length + gap), head * (width + gap)
            z[r : r + length, c : c + width] = values[layer, head]
    escaped = [html.escape(str(label), quote=False) for label in labels]
    fig = go.Figure(go.Heatmap(z=z, colorscale="Blues", zmin=0, zmax=1, hoverongaps=False,
                               hovertemplate="weight %{z:.3f}<extra></extra>", colorbar={"thickness": 10, "len": 0.8}))
    block = np.arange(length)
    if key_labels is None:
        fig.update_xaxes(tickvals=[h * (width + gap) + width / 2 - 0.5 for h in range(n_heads)],
                         ticktext=[f"head {h}" for h in range(n_heads)], side="top", showgrid=False, zeroline=False)
    else:  # every key named (a source character), the heads told apart by the title's "left to right"
        keys = [html.escape(str(k), quote=False) or "␣" for k in key_labels]
        fig.update_xaxes(tickvals=[h * (width + gap) + i for h in range(n_heads) for i in range(width)],
                         ticktext=[k if k.strip() else "␣" for _ in range(n_heads) for k in keys], side="top",
                         showgrid=False, zeroline=False, tickfont={"size": 9}, tickangle=0)
    fig.update_yaxes(tickvals=[layer * (length + gap) + i for layer in range(n_layers) for i in block],
                     ticktext=[f"L{layer} {escaped[i]}" for layer in range(n_layers) for i in block],
                     autorange="reversed", showgrid=False, zeroline=False, tickfont={"size": 9})
    heads = "" if key_labels is None else f", heads 0-{n_heads - 1} left to right"
    fig.update_layout(title=f"{what} on a fixed example at step {step} (rows: queries, columns: keys{heads})",
                      height=int(np.clip(16 * z.shape[0] + 120, 300, 1000)), plot_bgcolor=MASKED_COLOR,
                      margin={"l": 80, "r": 20, "t": 90, "b": 30})
    return fig
