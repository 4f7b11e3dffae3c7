"""bertviz head view and model view of a prepared trace, cached: in-page documents and standalone files.

The documents come from viz.bertviz_html (no CDN, no `import bertviz`). In the page, each view links
require.js, jQuery and d3 where the app serves them (`static/bertviz/`, Streamlit's static file
serving), so a document is the view's code and data only; the download inlines them and works offline.
This module picks the attention tensors and tokens out of the trace and estimates each view's height
from bertviz's own layout constants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from explain.labels import display_token
from explain.trace import PreparedTrace
from viz.bertviz_html import (
    head_view_html,
    head_view_html_encoder_decoder,
    model_view_html,
    model_view_html_encoder_decoder,
    standalone_html,
)

from .checkpoints import version_of
from .tracing import traced

# From bertviz's head_view.js (BOXHEIGHT, TEXT_TOP) and model_view.js (thumbnail and detail boxes).
HEAD_ROW_PX, HEAD_EXTRA_PX = 22.5, 110
MODEL_DETAIL_ROW_PX, MODEL_EXTRA_PX = 18, 140
# Where Streamlit serves the app's static/ folder (server.enableStaticServing in .streamlit/config.toml).
STATIC_PATH = "app/static"


@dataclass(frozen=True)
class BertvizViews:
    """Both views as in-page documents, iframe heights that fit them, a file name stem.

    The in-page documents link the libraries (`linked`) unless the server does not serve static/.
    """

    head_frame: str
    model_frame: str
    head_height: int
    model_height: int
    file_stem: str
    linked: bool

    @property
    def head_html(self) -> str:
        """The head view as a standalone HTML file (libraries inlined, works offline): the download."""
        return standalone_html(self.head_frame) if self.linked else self.head_frame

    @property
    def model_html(self) -> str:
        """The model view as a standalone HTML file: the download."""
        return standalone_html(self.model_frame) if self.linked else self.model_frame


def scripts_url() -> str | None:
    """The absolute path of static/bertviz/ on the app's server (under its baseUrlPath, if any).

    None when static serving is off (a server started without .streamlit/config.toml): the page then
    shows the standalone documents rather than views whose scripts would not load.
    """
    if not st.get_option("server.enableStaticServing"):
        return None
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(part for part in (base, STATIC_PATH, "bertviz") if part)


def build_views(prepared: PreparedTrace, name: str, layer: int, head: int) -> BertvizViews:
    """Head view opened on (layer, head) and the model view of every layer and head."""
    url = scripts_url()
    return _views(build_head_view(prepared, name, layer, head, url), build_model_view(prepared, name, url), name,
                  url)


def _views(head: tuple[str, int], model: tuple[str, int], name: str, url: str | None) -> BertvizViews:
    """Both (document, height) pairs, and a file name stem made of the checkpoint's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return BertvizViews(head[0], model[0], head[1], model[1], stem, linked=url is not None)


def _tokens(prepared: PreparedTrace) -> tuple[list[str], list[str]]:
    """Source and target tokens as bertviz shows them (the same list twice for a GPT)."""
    source = [display_token(t) for t in prepared.tokens]
    target = source if prepared.architecture == "gpt" else [display_token(t) for t in prepared.target_tokens]
    return source, target


def _encoder_decoder_parts(prepared: PreparedTrace) -> list[list]:
    """Encoder, decoder and cross-attention weights, each per layer (1, H, T_q, T_k)."""
    return [[a.weights for a in prepared.attention(kind)] for kind in ("encoder", "decoder", "cross")]


def build_head_view(prepared: PreparedTrace, name: str, layer: int, head: int, url: str | None) -> tuple[str, int]:
    """The head view opened on (layer, head), linking the libraries at url (None: inlined), and its height."""
    title = f"{name}: layer {layer}, head {head} selected"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        document = head_view_html(attention, source, layer=layer, heads=[head], title=title, scripts_url=url)
    else:
        document = head_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, layer=layer,
                                                  heads=[head], title=title, scripts_url=url)
    longest = max(len(source), len(target))
    return document, int(HEAD_ROW_PX * longest + HEAD_EXTRA_PX)


def build_model_view(prepared: PreparedTrace, name: str, url: str | None) -> tuple[str, int]:
    """The model view of every layer and head, linking the libraries at url (None: inlined), and its height."""
    title = f"{name}: every layer and head"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        document = model_view_html(attention, source, title=title, scripts_url=url)
    else:
        document = model_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, title=title,
                                                   scripts_url=url)
    longest = max(len(source), len(target))
    first = prepared.attention(prepared.kinds[0])
    n_layers, n_heads = len(first), first[0].weights.shape[1]
    thumbnails = n_layers * (longest * 7 * 12 / n_heads + 10) + 38
    model_height = max(thumbnails, longest * MODEL_DETAIL_ROW_PX + 80) + MODEL_EXTRA_PX
    return document, int(model_height)


# Two caches: the model view does not depend on the layer and head, so it is kept once per input
# instead of once per (input, layer, head). A document is its view's code and data (tens of KB).
@st.cache_data(show_spinner="Building the bertviz head view...", max_entries=32)
def _head_view_cached(name: str, version: tuple, text: str, layer: int, head: int,
                      url: str | None) -> tuple[str, int]:
    return build_head_view(traced(name, text), name, layer, head, url)


@st.cache_data(show_spinner="Building the bertviz model view...", max_entries=16)
def _model_view_cached(name: str, version: tuple, text: str, url: str | None) -> tuple[str, int]:
    return build_model_view(traced(name, text), name, url)


def bertviz_views(name: str, text: str, layer: int, head: int) -> BertvizViews:
    """Cached views for a listed checkpoint's trace of text (the trace must be ok)."""
    version, url = version_of(name), scripts_url()
    return _views(_head_view_cached(name, version, text, layer, head, url),
                  _model_view_cached(name, version, text, url), name, url)
