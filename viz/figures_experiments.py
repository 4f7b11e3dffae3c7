"""Figures of the what-if experiments: heads off, the importance map, hidden tokens, the logit lens.

Pure functions from the explanation layer's records to plotly figures; no Streamlit here.
Legend: K kinds of attention, L n_layers, H heads, T positions.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.experiments import AblationResult, PositionAccuracy
from explain.hiding import HiddenTokens
from explain.importance import ImportanceMap
from explain.labels import ACCURACY_POSITION_AXIS, display_token, prompt_rows
from explain.lens import LensRecord

from .panels import HIGHLIGHT, PROMPT_LINE, WEIGHTS_SCALE, plotly_labels

INTACT, ABLATED = "#3182bd", HIGHLIGHT
ANNOTATED_TOP = 1.15  # an accuracy axis's top, with room above 100% for the shaded region's label


def _prompt_line(fig: go.Figure, labels: list[str]) -> None:
    """A dashed vertical line on a category x axis where the prompt's positions end (labels.prompt_rows)."""
    end = prompt_rows(labels)
    if end is not None:
        fig.add_vline(x=end - 0.5, line={"color": PROMPT_LINE, "width": 2, "dash": "dash"})


def plot_accuracy_by_position(intact: PositionAccuracy, ablated: PositionAccuracy, title: str) -> go.Figure:
    """Accuracy at each position, intact and with the heads off; chance as a dashed line.

    The ticks are the record's (labels.reversal_axis / labels.dates_axis), the same axis on every page.
    """
    x = plotly_labels(intact.positions)
    fig = go.Figure([
        go.Bar(x=x, y=list(intact.accuracy), name=f"intact ({intact.headline_name}: {intact.headline:.1%})",
               marker_color=INTACT),
        go.Bar(x=x, y=list(ablated.accuracy), name=f"heads off ({ablated.headline:.1%})", marker_color=ABLATED),
    ])
    if intact.chance is not None:
        fig.add_hline(y=intact.chance, line_dash="dash", line_color="#636363",
                      annotation_text=f"chance {intact.chance:.0%}", annotation_position="top left")
    if intact.determined_from:
        fig.add_vrect(x0=intact.determined_from - 0.5, x1=len(x) - 0.5, fillcolor="#31a354", opacity=0.06,
                      line_width=0, annotation_text="determined by the input", annotation_position="top right")
    fig.update_layout(barmode="group", height=380, title=dict(text=html.escape(title)),
                      yaxis=dict(title="accuracy", range=[0, ANNOTATED_TOP], tickformat=".0%"),
                      xaxis=dict(title=ACCURACY_POSITION_AXIS, type="category"), legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=50, r=20, t=60, b=90))
    return fig


def plot_next_token_probabilities(result: AblationResult, title: str) -> go.Figure:
    """The most likely next tokens, intact and with the heads off."""
    tokens = plotly_labels([f"{p.token} " if p.token.isdigit() else p.token for p in result.probabilities])
    fig = go.Figure([
        go.Bar(x=tokens, y=[p.intact for p in result.probabilities], name="intact", marker_color=INTACT),
        go.Bar(x=tokens, y=[p.ablated for p in result.probabilities], name="heads off", marker_color=ABLATED),
    ])
    fig.update_layout(barmode="group", height=340, title=dict(text=html.escape(title)),
                      yaxis=dict(title="probability", range=[0, 1.05]), xaxis=dict(type="category"),
                      legend=dict(orientation="h", y=1.1), margin=dict(l=50, r=20, t=80, b=40))
    return fig


def plot_importance(importance: ImportanceMap, title: str) -> go.Figure:
    """Accuracy drop per head (left, one row per layer) and per whole layer (right), per kind of attention."""
    kinds = importance.kinds
    rows = [f"{kind} layer {layer}" if kind != "self" else f"layer {layer}"
            for kind in kinds for layer in range(importance.n_layers)]
    heads = importance.head_drop.reshape(len(rows), importance.n_heads)  # (K * L, H)
    layers = importance.layer_drop.reshape(len(rows), 1)  # (K * L, 1)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.8, 0.2], horizontal_spacing=0.08,
                        subplot_titles=["one head off", "whole layer off"])
    for col, values, x in ((1, heads, [f"head {h}" for h in range(importance.n_heads)]), (2, layers, ["all heads"])):
        fig.add_trace(go.Heatmap(z=values, x=x, y=rows, zmin=0, zmax=1, colorscale="Reds", showscale=col == 2,
                                 text=np.vectorize(lambda v: f"{v:.0%}")(values), texttemplate="%{text}",
                                 hovertemplate="%{y}, %{x}<br>accuracy drop %{text}<extra></extra>",
                                 colorbar=dict(title="drop", tickformat=".0%", thickness=10)), row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(220, 60 * len(rows) + 120), margin=dict(l=40, r=20, t=90, b=30),
                      title=dict(text=html.escape(f"{title} (baseline {importance.baseline:.1%})")))
    return fig


def plot_hidden_changes(hidden: HiddenTokens, title: str) -> go.Figure:
    """How far each output position's prediction moved when the tokens were hidden (total variation).

    Ticks are rows "position:token → intact prediction", the prompt's end dashed (labels.row_labels).
    """
    colours = np.where(hidden.top_changed, HIGHLIGHT, INTACT).tolist()
    after = [display_token(label.predicts) for label in hidden.hidden_row_labels]
    fig = go.Figure(go.Bar(x=plotly_labels(hidden.position_labels), y=hidden.distance.tolist(), marker_color=colours,
                           customdata=[html.escape(token) for token in after],
                           hovertemplate="%{x}<br>change %{y:.1%}<br>with the tokens hidden it predicts "
                                         "%{customdata}<extra></extra>"))
    _prompt_line(fig, list(hidden.position_labels))
    fig.update_layout(height=320, title=dict(text=html.escape(title)),
                      xaxis=dict(title="output position (reads → predicts, intact)", type="category"),
                      yaxis=dict(title="total variation", range=[0, 1.05], tickformat=".0%"),
                      margin=dict(l=50, r=20, t=60, b=60))
    return fig


def plot_lens(record: LensRecord, title: str) -> go.Figure:
    """Per reading (rows) and position (columns): the top token as text, coloured by its probability.

    Columns read "position:token → final prediction"; a dashed line marks where the prompt ends.
    """
    text = np.array([[html.escape(t) for t in row] for row in record.top_tokens], dtype=object)
    fig = go.Figure(go.Heatmap(z=record.top_probability, x=plotly_labels(record.position_labels),
                               y=list(record.layer_names), zmin=0, zmax=1, colorscale=WEIGHTS_SCALE,
                               text=text, texttemplate="%{text}",
                               hovertemplate="%{y}, %{x}<br>top token %{text}: %{z:.1%}<extra></extra>",
                               colorbar=dict(title="p", thickness=10)))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    _prompt_line(fig, list(record.position_labels))
    fig.update_layout(height=120 + 60 * len(record.layer_names), title=dict(text=html.escape(title)),
                      margin=dict(l=110, r=20, t=60, b=60))
    return fig


def plot_lens_climb(record: LensRecord, title: str) -> go.Figure:
    """The probability of each position's final token at each reading: one line per position."""
    fig = go.Figure()
    names = list(record.layer_names)
    for t, label in enumerate(plotly_labels(record.position_labels)):  # "position:token → final prediction"
        fig.add_trace(go.Scatter(x=names, y=record.final_probability[:, t].tolist(), mode="lines+markers", name=label))
    fig.update_layout(height=380, title=dict(text=html.escape(title)), xaxis=dict(type="category"),
                      yaxis=dict(title="probability of the final token", range=[0, 1.05]),
                      margin=dict(l=50, r=20, t=60, b=40))
    return fig
