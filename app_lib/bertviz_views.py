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
    title = f"{name}: layer {layer}, head {head} selected"
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        tokens = [display_token(t) for t in prepared.tokens]
        head_doc = head_view_html(attention, tokens, layer=layer, heads=[head], title=title)
        model_doc = model_view_html(attention, tokens, title=f"{name}: every layer and head")
        longest = len(tokens)
    else:
        parts = [[a.weights for a in prepared.attention(kind)] for kind in ("encoder", "decoder", "cross")]
        source = [display_token(t) for t in prepared.tokens]
        target = [display_token(t) for t in prepared.target_tokens]
        head_doc = head_view_html_encoder_decoder(*parts, source, target, layer=layer, heads=[head], title=title)
        model_doc = model_view_html_encoder_decoder(*parts, source, target, title=f"{name}: every layer and head")
        longest = max(len(source), len(target))
    first = prepared.attention(prepared.kinds[0])
    n_layers, n_heads = len(first), first[0].weights.shape[1]
    thumbnails = n_layers * (longest * 7 * 12 / n_heads + 10) + 38
    model_height = max(thumbnails, longest * MODEL_DETAIL_ROW_PX + 80) + MODEL_EXTRA_PX
    return BertvizViews(head_doc, model_doc, int(HEAD_ROW_PX * longest + HEAD_EXTRA_PX), int(model_height),
                        re.sub(r"[^A-Za-z0-9_-]+", "_", name))


@st.cache_data(show_spinner="Building the bertviz views...", max_entries=32)
def _views_cached(name: str, version: tuple, text: str, layer: int, head: int) -> BertvizViews:
    return build_views(traced(name, text), name, layer, head)


def bertviz_views(name: str, text: str, layer: int, head: int) -> BertvizViews:
    """Cached views for a listed checkpoint's trace of text (the trace must be ok)."""
    return _views_cached(name, version_of(name), text, layer, head)
