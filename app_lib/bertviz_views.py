"""bertviz head view and model view of a prepared trace, cached: in-page documents and standalone files.

The documents come from viz.bertviz_html (no CDN, no `import bertviz`). In the page, each view links
require.js, jQuery and d3 where the app serves them (`static/bertviz/`, Streamlit's static file
serving), so a document is the view's code and data only; the download inlines them and works offline.
This module picks the attention tensors and tokens out of the trace; each view's frame takes the height
of what it draws (app_lib.ui.html_frame).
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

# Where Streamlit serves the app's static/ folder (server.enableStaticServing in .streamlit/config.toml).
STATIC_PATH = "app/static"
# An encoder-decoder's attention kinds (explain.trace) and the names bertviz's Attention menu gives them.
ENTRY_NAMES = {"encoder": "Encoder", "decoder": "Decoder", "cross": "Cross"}


@dataclass(frozen=True)
class BertvizViews:
    """Both views as in-page documents and a file name stem.

    The in-page documents link the libraries (`linked`) unless the server does not serve static/.
    """

    head_frame: str
    model_frame: str
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


def build_views(prepared: PreparedTrace, name: str, layer: int, head: int, kind: str | None = None) -> BertvizViews:
    """Head view opened on (layer, head) and the model view of every layer and head, both showing the
    attention `kind` first (an encoder-decoder's "encoder", "decoder" or "cross"; None: the encoder)."""
    url = scripts_url()
    return _views(build_head_view(prepared, name, layer, head, url, kind), build_model_view(prepared, name, url, kind),
                  name, url)


def _views(head: str, model: str, name: str, url: str | None) -> BertvizViews:
    """Both documents, and a file name stem made of the checkpoint's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return BertvizViews(head, model, stem, linked=url is not None)


def _tokens(prepared: PreparedTrace) -> tuple[list[str], list[str]]:
    """Source and target tokens as bertviz shows them (the same list twice for a GPT)."""
    source = [display_token(t) for t in prepared.tokens]
    target = source if prepared.architecture == "gpt" else [display_token(t) for t in prepared.target_tokens]
    return source, target


def _encoder_decoder_parts(prepared: PreparedTrace) -> list[list]:
    """Encoder, decoder and cross-attention weights, each per layer (1, H, T_q, T_k)."""
    return [[a.weights for a in prepared.attention(kind)] for kind in ENTRY_NAMES]


def _entry_name(prepared: PreparedTrace, kind: str | None) -> str | None:
    """bertviz's name for an encoder-decoder's attention kind (its Attention menu); None for a GPT."""
    if prepared.architecture == "gpt" or kind is None:
        return None
    if kind not in ENTRY_NAMES:
        raise ValueError(f"kind must be one of {list(ENTRY_NAMES)} for an encoder-decoder, got {kind!r}")
    return ENTRY_NAMES[kind]


def build_head_view(prepared: PreparedTrace, name: str, layer: int, head: int, url: str | None,
                    kind: str | None = None) -> str:
    """The head view opened on (layer, head) and attention `kind`, linking the libraries at url (None: inlined)."""
    title = f"{name}: layer {layer}, head {head} selected"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        return head_view_html(attention, source, layer=layer, heads=[head], title=title, scripts_url=url)
    return head_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, layer=layer,
                                          heads=[head], title=title, scripts_url=url,
                                          selected=_entry_name(prepared, kind))


def build_model_view(prepared: PreparedTrace, name: str, url: str | None, kind: str | None = None) -> str:
    """The model view of every layer and head showing attention `kind` first, linking the libraries at url
    (None: inlined)."""
    title = f"{name}: every layer and head"
    source, target = _tokens(prepared)
    if prepared.architecture == "gpt":
        attention = [a.weights for a in prepared.attention("self")]  # per layer (1, H, T, T)
        return model_view_html(attention, source, title=title, scripts_url=url)
    return model_view_html_encoder_decoder(*_encoder_decoder_parts(prepared), source, target, title=title,
                                           scripts_url=url, selected=_entry_name(prepared, kind))


# Two caches: the model view does not depend on the layer and head, so it is kept once per input
# instead of once per (input, layer, head). A document is its view's code and data (tens of KB).
@st.cache_data(show_spinner="Building the bertviz head view...", max_entries=32)
def _head_view_cached(name: str, version: tuple, text: str, layer: int, head: int,
                      url: str | None, kind: str | None) -> str:
    return build_head_view(traced(name, text), name, layer, head, url, kind)


@st.cache_data(show_spinner="Building the bertviz model view...", max_entries=16)
def _model_view_cached(name: str, version: tuple, text: str, url: str | None, kind: str | None) -> str:
    return build_model_view(traced(name, text), name, url, kind)


def bertviz_views(name: str, text: str, layer: int, head: int, kind: str | None = None) -> BertvizViews:
    """Cached views for a listed checkpoint's trace of text (the trace must be ok), opened on attention `kind`."""
    version, url = version_of(name), scripts_url()
    return _views(_head_view_cached(name, version, text, layer, head, url, kind),
                  _model_view_cached(name, version, text, url, kind), name, url)
