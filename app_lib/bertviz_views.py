"""bertviz head view and model view of a prepared trace, as standalone offline HTML, cached.

The documents come from viz.bertviz_html (vendored JavaScript inlined, no network, no
`import bertviz`); this module picks the attention tensors and tokens out of the trace and
estimates each view's height from bertviz's own layout constants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from viz.bertviz_html import (
    head_view_html,
    head_view_html_encoder_decoder,
    model_view_html,
    model_view_html_encoder_decoder,
)

from .checkpoints import version_of
from .tracing import PreparedTrace, display_token, traced

# From bertviz's head_view.js (BOXHEIGHT, TEXT_TOP) and model_view.js (thumbnail and detail boxes).
HEAD_ROW_PX, HEAD_EXTRA_PX = 22.5, 110
MODEL_DETAIL_ROW_PX, MODEL_EXTRA_PX = 18, 140


@dataclass(frozen=True)
class BertvizViews:
    """Both views as complete HTML documents, and iframe heights that fit them."""

    head_html: str
    model_html: str
    head_height: int
    model_height: int
    file_stem: str


def build_views(prepared: PreparedTrace, name: str, layer: int, head: int) -> BertvizViews:
    """Head view opened on (layer, head) and the model view of every layer and head."""
    return _views(build_head_view(prepared, name, layer, head), build_model_view(prepared, name), name)


def _views(head: tuple[str, int], model: tuple[str, int], name: str) -> BertvizViews:
    """Both (document, height) pairs, and a file name stem made of the checkpoint's name."""
    return BertvizViews(head[0], model[0], head[1], model[1], re.sub(r"[^A-Za-z0-9_-]+", "_", name))


def _tokens(prepared: PreparedTrace) -> tuple[list[str], list[str]]:
    """Source and target tokens as bertviz shows them (the same list twice for a GPT)."""
    source = [display_token(t) for t in prepared.tokens]
    target = source if prepared.architecture == "gpt" else [display_token(t) for t in prepared.target_tokens]
    return source, target


def _encoder_decoder_parts(prepared: PreparedTrace) -> list[list]:
    """Encoder, decoder and cross-attention weights, each per layer (1, H, T_q, T_k)."""
    return [[a.weights for a in prepared.attention(kind)] for kind in ("encoder", "decoder", "cross")]


def build_head_view(prepared: PreparedTrace, name: str, layer: int, head: int) -> tuple[str, int]:
    """The head view opened on (layer, head), and an iframe height that fits it."""
    title = f"{name}: layer {layer}, head {head} selected"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        document = head_view_html(attention, source, layer=layer, heads=[head], title=title)
    else:
        document = head_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, layer=layer,
                                                  heads=[head], title=title)
    longest = max(len(source), len(target))
    return document, int(HEAD_ROW_PX * longest + HEAD_EXTRA_PX)


def build_model_view(prepared: PreparedTrace, name: str) -> tuple[str, int]:
    """The model view of every layer and head, and an iframe height that fits it."""
    title = f"{name}: every layer and head"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        document = model_view_html(attention, source, title=title)
    else:
        document = model_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, title=title)
    longest = max(len(source), len(target))
    first = prepared.attention(prepared.kinds[0])
    n_layers, n_heads = len(first), first[0].weights.shape[1]
    thumbnails = n_layers * (longest * 7 * 12 / n_heads + 10) + 38
    model_height = max(thumbnails, longest * MODEL_DETAIL_ROW_PX + 80) + MODEL_EXTRA_PX
    return document, int(model_height)


# Two caches: the model view does not depend on the layer and head, so it is kept once per input
# instead of once per (input, layer, head). Each document is about 0.45 MB (the vendored scripts).
@st.cache_data(show_spinner="Building the bertviz head view...", max_entries=32)
def _head_view_cached(name: str, version: tuple, text: str, layer: int, head: int) -> tuple[str, int]:
    return build_head_view(traced(name, text), name, layer, head)


@st.cache_data(show_spinner="Building the bertviz model view...", max_entries=16)
def _model_view_cached(name: str, version: tuple, text: str) -> tuple[str, int]:
    return build_model_view(traced(name, text), name)


def bertviz_views(name: str, text: str, layer: int, head: int) -> BertvizViews:
    """Cached views for a listed checkpoint's trace of text (the trace must be ok)."""
    version = version_of(name)
    return _views(_head_view_cached(name, version, text, layer, head), _model_view_cached(name, version, text), name)
