"""bertviz's head view and model view as HTML documents, without a CDN and without ``import bertviz``.

bertviz's own ``head_view``/``model_view`` fetch require.js, jQuery and d3 from a CDN (an empty box
offline) and ``import bertviz`` imports ``transformers``. The builders here make the same views from
bertviz's JavaScript files (viz.bertviz_scripts) and checked attention data (viz.bertviz_data):

- by default, a standalone document with every library inlined (~0.45 MB): a download that works
  offline;
- with ``scripts_url`` (where the app serves ``static/bertviz/``, e.g. ``/app/static/bertviz``), a
  document of a few KB plus the attention data that links the libraries instead: the in-page view,
  whose scripts the browser fetches and compiles once for every view. :func:`standalone_html` turns
  it into the standalone file.

Attention input follows bertviz's contract: a list with one entry per layer, each a torch tensor or
numpy array shaped ``(1, H, T_q, T_k)`` or ``(H, T_q, T_k)``; tokens are lists of ``str``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from numpy.typing import ArrayLike

from .bertviz_data import (
    Entry,
    check_layer_and_heads,
    check_tokens,
    encoder_decoder_entries,
    self_attention_entries,
    stack_layers,
)
from .bertviz_scripts import (
    AMD_SHIM,
    CSP_LINKED,
    CSP_STANDALONE,
    VENDOR_DIR,
    VENDOR_SCRIPTS,
    inline_libraries,
    json_for_script,
    library_tags,
    script_tag,
    view_js,
)

__all__ = [
    "VENDOR_DIR", "VENDOR_SCRIPTS", "head_view_html", "head_view_html_encoder_decoder", "model_view_html",
    "model_view_html_encoder_decoder", "standalone_html",
]

_ROOT_DIV_ID = "bertviz"
_FONT = "'Helvetica Neue', Helvetica, Arial, sans-serif"

# head_view.js right-aligns left-hand tokens in a 110px box starting at x=0, so
# long tokens would be clipped; we pad #vis by an estimate of the overflow.
_HEAD_LABEL_PX = 102
_CHAR_PX = 9

# model_view.js draws a fixed 970-pixel-wide SVG (DIV_WIDTH) with no viewBox, so a narrower frame cut off
# the last heads. Each SVG it draws (again on every change of the Attention menu) gets a viewBox and
# scales down to the frame's width, never up; clicks still land, since they are in the SVG's own units.
FIT_TO_WIDTH = """(function () {
  var vis = document.querySelector('#bertviz #vis');
  function fit() {
    var svg = vis.querySelector('svg');
    if (!svg || svg.hasAttribute('viewBox')) return;
    var width = svg.getAttribute('width'), height = svg.getAttribute('height');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', '100%');
    svg.removeAttribute('height');
    svg.style.maxWidth = width + 'px';
    svg.style.height = 'auto';
  }
  new MutationObserver(fit).observe(vis, {childList: true});
  fit();
})();"""


# ----------------------------------------------------------------- public API


def head_view_html(
    attention: Sequence[ArrayLike],
    tokens: Sequence[str],
    *,
    sentence_b_start: int | None = None,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    title: str | None = None,
    scripts_url: str | None = None,
) -> str:
    """An HTML head view of a self-attention model (standalone unless ``scripts_url`` is given).

    ``attention``: per layer ``(1, H, T, T)`` or ``(H, T, T)``; ``tokens``: T strings.
    ``sentence_b_start`` adds bertviz's sentence A/B filter dropdown; ``layer``
    and ``heads`` pick the initially shown layer and heads (default: 0 / all).
    """
    stacked = stack_layers(attention, "attention")  # (L, H, T, T)
    entries = self_attention_entries(stacked, check_tokens(tokens, "tokens"), sentence_b_start)
    return _head_view_document(entries, stacked.shape[:2], layer, heads, title, scripts_url)


def model_view_html(
    attention: Sequence[ArrayLike],
    tokens: Sequence[str],
    *,
    sentence_b_start: int | None = None,
    title: str | None = None,
    scripts_url: str | None = None,
) -> str:
    """An HTML model view (grid of all layers x heads, light theme), standalone unless ``scripts_url``.

    ``attention``: per layer ``(1, H, T, T)`` or ``(H, T, T)``; ``tokens``: T strings.
    """
    stacked = stack_layers(attention, "attention")  # (L, H, T, T)
    entries = self_attention_entries(stacked, check_tokens(tokens, "tokens"), sentence_b_start)
    return _model_view_document(entries, stacked.shape[:2], title, scripts_url)


def head_view_html_encoder_decoder(
    encoder_attention: Sequence[ArrayLike] | None,
    decoder_attention: Sequence[ArrayLike] | None,
    cross_attention: Sequence[ArrayLike] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
    *,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    title: str | None = None,
    scripts_url: str | None = None,
    selected: str | None = None,
) -> str:
    """An HTML head view of an encoder-decoder model (standalone unless ``scripts_url`` is given).

    Shapes per layer: encoder ``(1, H, T_enc, T_enc)``, decoder
    ``(1, H, T_dec, T_dec)``, cross ``(1, H, T_dec, T_enc)``. Any of the three
    may be None (at least one is required); a dropdown switches between them.
    ``selected`` ("Encoder", "Decoder" or "Cross") is the one shown first (default: the first given).
    """
    entries, dims = encoder_decoder_entries(
        encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens
    )
    return _head_view_document(entries, dims, layer, heads, title, scripts_url, selected_entry(entries, selected))


def model_view_html_encoder_decoder(
    encoder_attention: Sequence[ArrayLike] | None,
    decoder_attention: Sequence[ArrayLike] | None,
    cross_attention: Sequence[ArrayLike] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
    *,
    title: str | None = None,
    scripts_url: str | None = None,
    selected: str | None = None,
) -> str:
    """An HTML model view of an encoder-decoder model (standalone unless ``scripts_url`` is given).

    Same inputs as :func:`head_view_html_encoder_decoder`, ``selected`` included.
    """
    entries, dims = encoder_decoder_entries(
        encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens
    )
    return _model_view_document(entries, dims, title, scripts_url, selected_entry(entries, selected))


def standalone_html(document: str) -> str:
    """A document built with ``scripts_url`` as a standalone file: libraries inlined, no fetching."""
    return inline_libraries(document)


# ------------------------------------------------------------ HTML assembly


def _head_view_document(
    entries: list[Entry], dims: tuple[int, int], layer: int | None,
    heads: Sequence[int] | None, title: str | None, scripts_url: str | None, shown: int = 0,
) -> str:
    """Assemble the head view document from bertviz entries and (layers, heads) dims."""
    n_layers, n_heads = dims
    layer, heads = check_layer_and_heads(layer, heads, n_layers, n_heads)
    params = {
        "attention": entries,
        "default_filter": str(shown),
        "root_div_id": _ROOT_DIV_ID,
        "layer": layer,
        "heads": heads,
        "include_layers": list(range(n_layers)),
    }
    controls = 'Layer: <select id="layer"></select> ' + _filter_select(entries, shown)
    longest = max(len(token) for entry in entries for token in entry["left_text"])
    pad = max(0, longest * _CHAR_PX - _HEAD_LABEL_PX)
    css = f"#vis {{ padding-left: {pad}px; }} #vis svg {{ overflow: visible; }}"
    return _document("head_view.js", params, controls, title or "Attention head view", title, css, scripts_url)


def _model_view_document(
    entries: list[Entry], dims: tuple[int, int], title: str | None, scripts_url: str | None, shown: int = 0,
) -> str:
    """Assemble the model view document (light theme) from bertviz entries; it scales to its frame's width."""
    n_layers, n_heads = dims
    params = {
        "attention": entries,
        "default_filter": str(shown),
        "display_mode": "light",
        "root_div_id": _ROOT_DIV_ID,
        "include_layers": list(range(n_layers)),
        "include_heads": list(range(n_heads)),
        "total_heads": n_heads,
    }
    controls = _filter_select(entries, shown)
    return _document("model_view.js", params, controls, title or "Attention model view", title, "", scripts_url,
                     after=FIT_TO_WIDTH)


def selected_entry(entries: list[Entry], name: str | None) -> int:
    """The index of the entry called `name` (None: the first), for bertviz's ``default_filter``."""
    names = [entry["name"] for entry in entries]
    if name is None:
        return 0
    if name not in names:
        raise ValueError(f"selected must be one of {names}, got {name!r}")
    return names.index(name)


def _filter_select(entries: list[Entry], shown: int = 0) -> str:
    """bertviz's 'Attention:' dropdown (the shown entry selected), only when there is more than one entry."""
    if len(entries) < 2:
        return ""
    options = "".join(
        f'<option value="{i}"{" selected" if i == shown else ""}>{html.escape(entry["name"] or "")}</option>'
        for i, entry in enumerate(entries)
    )
    return f'Attention: <select id="filter">{options}</select>'


def _document(
    js_name: str, params: dict, controls: str, doc_title: str, heading: str | None, css: str,
    scripts_url: str | None, after: str | None = None,
) -> str:
    """The full HTML page: markup, the libraries (inline or linked), AMD shim, bertviz's view JS, then `after`."""
    tags = library_tags(scripts_url)
    tags += [script_tag(AMD_SHIM), script_tag(view_js(js_name, json_for_script(params)))]
    tags += [script_tag(after)] if after else []
    csp = CSP_STANDALONE if scripts_url is None else CSP_LINKED
    heading_html = f"<h3>{html.escape(heading)}</h3>\n" if heading else ""
    script_tags = "\n".join(tags)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f"<title>{html.escape(doc_title)}</title>\n"
        f"<style>body {{ margin: 8px; background: #fff; color: #000; font-family: {_FONT}; }}"
        f" h3 {{ margin: 0 0 8px 0; font-size: 16px; }} {css}</style>\n"
        "</head>\n<body>\n"
        f"{heading_html}"
        f'<div id="{_ROOT_DIV_ID}">\n'
        f'<span style="user-select:none">{controls}</span>\n'
        '<div id="vis"></div>\n</div>\n'
        f"{script_tags}\n"
        "</body>\n</html>\n"
    )
