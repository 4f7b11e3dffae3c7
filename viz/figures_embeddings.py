"""Plotly figures of token embeddings and positional encodings. Pure functions: no Streamlit here.

Legend: T tokens of the input, D d_model, V vocabulary size, L positions (length or max_len).
Labels follow viz/panels.py: unique ("3:the") and HTML-escaped for plotly.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .panels import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    VERMILLION,
    Array,
    Panel,
    plot_matrix,
    plot_panels,
    plotly_labels,
    to_numpy,
)

GROUP_COLOURS = {"digit": BLUE, "letter": VERMILLION, "word": PURPLE, "punctuation": GREEN, "space": GREY,
                 "special": ORANGE}


def token_group(token: str) -> str:
    """A coarse kind of token for colouring the vocabulary: digit, letter, word, punctuation, space, special."""
    if token.startswith("<") and token.endswith(">") and len(token) > 2:
        return "special"
    if token.isdigit():
        return "digit"
    if token.isalpha():
        return "letter" if len(token) == 1 else "word"
    if not token.strip() or token in ("␣", "⏎", "⇥"):
        return "space"
    return "punctuation"


def cosine_similarity(vectors: Array) -> np.ndarray:
    """Pairwise cosine similarity of the rows of a (T, D) matrix; a zero row gets similarity 0."""
    rows = to_numpy(vectors)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return unit @ unit.T  # (T, T)


def plot_token_embeddings(embeddings: Array, labels: Sequence[str], title: str) -> go.Figure:
    """The embedding rows of the input's tokens: T rows, d_model columns."""
    return plot_matrix(Panel(to_numpy(embeddings), "embedding vector", labels, None), title)


def plot_cosine_similarity(embeddings: Array, labels: Sequence[str]) -> go.Figure:
    """cos(e_i, e_j) between the input's token embeddings (1 = same direction)."""
    panel = Panel(cosine_similarity(embeddings), "cosine similarity", labels, labels)
    fig = plot_matrix(panel, "How alike are the tokens' embeddings? cos(eᵢ, eⱼ)")
    fig.update_traces(zmin=-1.0, zmax=1.0)
    return fig


def plot_vocab_scatter(coords: Array, tokens: Sequence[str], explained: tuple[float, float],
                       highlight: Sequence[str] = ()) -> go.Figure:
    """Every vocabulary token at its first two principal components, coloured by kind of token.

    Small vocabularies get a text label on every point (SVG); large ones are drawn with WebGL and
    label only `highlight` (the tokens of the input), drawn larger on top.
    """
    xy = to_numpy(coords)
    if xy.shape != (len(tokens), 2):
        raise ValueError(f"coords must be (V, 2) for {len(tokens)} tokens, got {xy.shape}.")
    groups = np.array([token_group(t) for t in tokens])
    label_all = len(tokens) <= 80
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        index = np.flatnonzero(groups == group)
        if not len(index):
            continue
        names = [html.escape(tokens[i], quote=False) for i in index]
        scatter = go.Scatter if label_all else go.Scattergl  # WebGL draws text raw: only used without labels
        fig.add_trace(scatter(
            x=xy[index, 0], y=xy[index, 1], mode="markers+text" if label_all else "markers", name=group,
            text=names if label_all else None, textposition="top center", hovertext=names,
            hovertemplate="%{hovertext}<extra>" + group + "</extra>",
            marker=dict(color=colour, size=9 if label_all else 5, opacity=0.85 if label_all else 0.5),
        ))
    wanted = {t for t in highlight}
    picked = [i for i, t in enumerate(tokens) if t in wanted]
    if picked and not label_all:
        names = [html.escape(tokens[i], quote=False) for i in picked]
        fig.add_trace(go.Scatter(x=xy[picked, 0], y=xy[picked, 1], mode="markers+text", name="in your input",
                                 text=names, textposition="top center", hovertext=names,
                                 hovertemplate="%{hovertext}<extra>in your input</extra>",
                                 marker=dict(color="black", size=10, symbol="diamond")))
    fig.update_layout(
        title=dict(text=f"The whole vocabulary ({len(tokens)} tokens), projected to 2-D by PCA"),
        xaxis_title=f"PC 1 ({explained[0]:.0%} of the variance)", yaxis_title=f"PC 2 ({explained[1]:.0%})",
        height=560, margin=dict(l=60, r=30, t=70, b=60), legend=dict(title="token kind"),
    )
    return fig


def plot_positional_matrix(table: Array, title: str) -> go.Figure:
    """A positional table: one row per position, one column per dimension."""
    values = to_numpy(table)
    fig = plot_matrix(Panel(values, "PE[pos, i]"), title)
    fig.update_yaxes(title_text="position")
    fig.update_xaxes(title_text="dimension i")
    return fig


def plot_positional_curves(table: Array, dims: Sequence[int]) -> go.Figure:
    """A few dimensions of a positional table as curves over position: low dimensions oscillate fastest."""
    values = to_numpy(table)
    fig = go.Figure()
    for d in dims:
        if not 0 <= d < values.shape[1]:
            raise ValueError(f"dimension {d} is outside 0..{values.shape[1] - 1}.")
        kind = "sin" if d % 2 == 0 else "cos"
        fig.add_trace(go.Scatter(x=np.arange(values.shape[0]), y=values[:, d], mode="lines",
                                 name=f"dim {d} ({kind})"))
    fig.update_layout(title=dict(text="Each dimension is a wave; its frequency falls with the dimension"),
                      xaxis_title="position", yaxis_title="PE[pos, i]", height=380,
                      margin=dict(l=60, r=30, t=70, b=60))
    return fig


def plot_position_similarity(table: Array, title: str) -> go.Figure:
    """Dot products PE[i] . PE[j] between every pair of positions (L x L)."""
    values = to_numpy(table)
    fig = plot_matrix(Panel(values @ values.T, "PE[i] · PE[j]"), title)  # (L, L)
    fig.update_xaxes(title_text="position j")
    fig.update_yaxes(title_text="position i")
    fig.update_layout(height=560)
    return fig


def plot_embedding_sum(token: Array, positional: Array | None, summed: Array, labels: Sequence[str],
                       positional_kind: str) -> go.Figure:
    """Token embedding + positional encoding = what enters the first layer, side by side (T x D each)."""
    plotly_labels(labels)  # fail early on duplicate labels
    panels = [Panel(to_numpy(token), "token embedding", labels, None)]
    if positional is not None:
        panels.append(Panel(to_numpy(positional), f"+ positional ({positional_kind})", labels, None))
    panels.append(Panel(to_numpy(summed), "= input to layer 0", labels, None))
    return plot_panels(panels, "What the first layer receives: token embedding + positional encoding")
