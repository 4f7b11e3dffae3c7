"""Standalone, offline HTML documents for bertviz's head view and model view.

bertviz's own ``head_view``/``model_view`` fetch require.js, jQuery and d3 from a
CDN (an empty box offline) and ``import bertviz`` imports ``transformers``.
This module builds the same views without either: it reads bertviz's
``head_view.js``/``model_view.js`` from the installed package *files* (located
with ``importlib.util.find_spec``, which does not run ``bertviz/__init__.py``),
inlines the vendored libraries from ``viz/vendor/`` and returns one complete
HTML document that needs no network, suitable for ``st.iframe`` or a download.

Attention input follows bertviz's contract: a list with one entry per layer,
each a torch tensor or numpy array shaped ``(1, H, T_q, T_k)`` or
``(H, T_q, T_k)``; tokens are lists of ``str``.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"

# Order matters: jQuery and d3 load before require.js so they become plain
# globals (d3 would otherwise issue an anonymous AMD define()).
VENDOR_SCRIPTS = ("jquery-2.2.4.min.js", "d3-5.7.0.min.js", "require-2.3.6.js")

# Registers the globals as the AMD modules 'jquery' and 'd3' that bertviz's
# requirejs(['jquery', 'd3'], ...) call asks for, so nothing is fetched.
_AMD_SHIM = (
    "define('jquery', [], function () { return window.jQuery; });\n"
    "define('d3', [], function () { return window.d3; });"
)

_ROOT_DIV_ID = "bertviz"
_DECIMALS = 4
_FONT = "'Helvetica Neue', Helvetica, Arial, sans-serif"
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)
_PARAMS_MARKER = "PYTHON_PARAMS;"
_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}

# head_view.js right-aligns left-hand tokens in a 110px box starting at x=0, so
# long tokens would be clipped; we pad #vis by an estimate of the overflow.
_HEAD_LABEL_PX = 102
_CHAR_PX = 9


# ----------------------------------------------------------------- public API


def head_view_html(
    attention: Sequence[Any],
    tokens: Sequence[str],
    *,
    sentence_b_start: int | None = None,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    title: str | None = None,
) -> str:
    """Return a standalone HTML head view of a self-attention model.

    ``attention``: per layer ``(1, H, T, T)`` or ``(H, T, T)``; ``tokens``: T strings.
    ``sentence_b_start`` adds bertviz's sentence A/B filter dropdown; ``layer``
    and ``heads`` pick the initially shown layer and heads (default: 0 / all).
    """
    stacked = _stack_layers(attention, "attention")  # (L, H, T, T)
    entries = _self_attention_entries(stacked, _check_tokens(tokens, "tokens"), sentence_b_start)
    return _head_view_document(entries, stacked.shape[:2], layer, heads, title)


def model_view_html(
    attention: Sequence[Any],
    tokens: Sequence[str],
    *,
    sentence_b_start: int | None = None,
    title: str | None = None,
) -> str:
    """Return a standalone HTML model view (grid of all layers x heads), light theme.

    ``attention``: per layer ``(1, H, T, T)`` or ``(H, T, T)``; ``tokens``: T strings.
    """
    stacked = _stack_layers(attention, "attention")  # (L, H, T, T)
    entries = _self_attention_entries(stacked, _check_tokens(tokens, "tokens"), sentence_b_start)
    return _model_view_document(entries, stacked.shape[:2], title)


def head_view_html_encoder_decoder(
    encoder_attention: Sequence[Any] | None,
    decoder_attention: Sequence[Any] | None,
    cross_attention: Sequence[Any] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
    *,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    title: str | None = None,
) -> str:
    """Return a standalone HTML head view of an encoder-decoder model.

    Shapes per layer: encoder ``(1, H, T_enc, T_enc)``, decoder
    ``(1, H, T_dec, T_dec)``, cross ``(1, H, T_dec, T_enc)``. Any of the three
    may be None (at least one is required); a dropdown switches between them.
    """
    entries, dims = _encoder_decoder_entries(
        encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens
    )
    return _head_view_document(entries, dims, layer, heads, title)


def model_view_html_encoder_decoder(
    encoder_attention: Sequence[Any] | None,
    decoder_attention: Sequence[Any] | None,
    cross_attention: Sequence[Any] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
    *,
    title: str | None = None,
) -> str:
    """Return a standalone HTML model view of an encoder-decoder model.

    Same inputs as :func:`head_view_html_encoder_decoder`.
    """
    entries, dims = _encoder_decoder_entries(
        encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens
    )
    return _model_view_document(entries, dims, title)


# ------------------------------------------------------- input normalisation


def _layer_array(layer: Any, index: int, name: str) -> np.ndarray:
    """Convert one layer's attention (tensor or array) to a float64 array (H, T_q, T_k)."""
    if hasattr(layer, "detach"):
        layer = layer.detach().cpu().float().numpy()
    array = np.asarray(layer, dtype=np.float64)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"{name}[{index}] has batch size {array.shape[0]}; only a batch of 1 "
                f"can be shown (expected shape (1, H, T_q, T_k), got {array.shape})"
            )
        array = array[0]
    if array.ndim != 3:
        raise ValueError(
            f"{name}[{index}] must have shape (1, H, T_q, T_k) or (H, T_q, T_k), got {array.shape}"
        )
    return array


def _stack_layers(attention: Sequence[Any], name: str) -> np.ndarray:
    """Stack a per-layer list of attention maps into one array (L, H, T_q, T_k)."""
    if attention is None:
        raise ValueError(f"{name} is required")
    layers = [_layer_array(layer, i, name) for i, layer in enumerate(attention)]
    if not layers:
        raise ValueError(f"{name} must contain at least one layer")
    first = layers[0].shape  # (H, T_q, T_k)
    for i, layer in enumerate(layers):
        if layer.shape != first:
            raise ValueError(f"{name}[{i}] has shape {layer.shape} but {name}[0] has {first}")
    if 0 in first:
        raise ValueError(f"{name} has an empty dimension: per-layer shape {first}")
    stacked = np.stack(layers)
    if not np.isfinite(stacked).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return stacked


def _check_tokens(tokens: Sequence[str] | None, name: str) -> list[str]:
    """Return ``tokens`` as a list of str, rejecting a bare string or non-str items."""
    if tokens is None:
        raise ValueError(f"{name} is required")
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a list of str, not a single str")
    tokens = list(tokens)
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"{name}[{i}] must be str, got {type(token).__name__}")
    return tokens


def _entry(name: str | None, attn: np.ndarray, left: list[str], right: list[str], what: str) -> dict:
    """Build one bertviz attention entry after checking attn (L, H, T_q, T_k) against the tokens."""
    _, _, t_q, t_k = attn.shape
    if t_q != len(left):
        raise ValueError(f"{what} has {t_q} query positions but {len(left)} tokens were given: {left!r}")
    if t_k != len(right):
        raise ValueError(f"{what} has {t_k} key positions but {len(right)} tokens were given: {right!r}")
    return {
        "name": name,
        "attn": np.round(attn, _DECIMALS).tolist(),
        "left_text": left,
        "right_text": right,
    }


def _self_attention_entries(
    attn: np.ndarray, tokens: list[str], sentence_b_start: int | None
) -> list[dict]:
    """Entries for a self-attention model; with ``sentence_b_start`` adds the A/B filters."""
    if sentence_b_start is None:
        return [_entry(None, attn, tokens, tokens, "attention")]
    full = _entry("All", attn, tokens, tokens, "attention")
    if not 0 < sentence_b_start < len(tokens):
        raise ValueError(
            f"sentence_b_start must be in 1..{len(tokens) - 1} for {len(tokens)} tokens, "
            f"got {sentence_b_start}"
        )
    a, b = slice(0, sentence_b_start), slice(sentence_b_start, len(tokens))
    pairs = [("A", a, "A", a), ("B", b, "B", b), ("A", a, "B", b), ("B", b, "A", a)]
    entries = [full]
    for left_name, left, right_name, right in pairs:
        sub = attn[:, :, left, right]  # (L, H, |left|, |right|)
        name = f"Sentence {left_name} -> Sentence {right_name}"
        entries.append(_entry(name, sub, tokens[left], tokens[right], name))
    return entries


def _encoder_decoder_entries(
    encoder_attention: Sequence[Any] | None,
    decoder_attention: Sequence[Any] | None,
    cross_attention: Sequence[Any] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
) -> tuple[list[dict], tuple[int, int]]:
    """Entries 'Encoder'/'Decoder'/'Cross' (those given) and their shared (layers, heads)."""
    kinds = [
        ("Encoder", encoder_attention, "encoder_attention", "encoder_tokens", "encoder_tokens"),
        ("Decoder", decoder_attention, "decoder_attention", "decoder_tokens", "decoder_tokens"),
        ("Cross", cross_attention, "cross_attention", "decoder_tokens", "encoder_tokens"),
    ]
    given = {"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens}
    entries, dims = [], {}
    for name, attention, attn_name, left_name, right_name in kinds:
        if attention is None:
            continue
        stacked = _stack_layers(attention, attn_name)  # (L, H, T_q, T_k)
        left = _check_tokens(given[left_name], left_name)
        right = _check_tokens(given[right_name], right_name)
        entries.append(_entry(name, stacked, left, right, attn_name))
        dims[attn_name] = stacked.shape[:2]
    if not entries:
        raise ValueError("at least one of encoder_attention, decoder_attention, cross_attention is required")
    if len(set(dims.values())) > 1:
        detail = ", ".join(f"{k}: {l} layers x {h} heads" for k, (l, h) in dims.items())
        raise ValueError(f"all attention kinds must have the same number of layers and heads ({detail})")
    return entries, next(iter(dims.values()))


def _check_layer_and_heads(
    layer: int | None, heads: Sequence[int] | None, n_layers: int, n_heads: int
) -> tuple[int | None, list[int] | None]:
    """Validate the head view's initial ``layer`` and ``heads`` and make them JSON-ready."""
    if layer is not None and not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    if heads is None:
        return (None if layer is None else int(layer)), None
    heads = [int(h) for h in heads]
    if not heads:
        raise ValueError("heads must not be empty (use None for all heads)")
    bad = [h for h in heads if not 0 <= h < n_heads]
    if bad:
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {bad}")
    return (None if layer is None else int(layer)), heads


# ------------------------------------------------------------ HTML assembly


def _head_view_document(
    entries: list[dict], dims: tuple[int, int], layer: int | None,
    heads: Sequence[int] | None, title: str | None,
) -> str:
    """Assemble the head view document from bertviz entries and (layers, heads) dims."""
    n_layers, n_heads = dims
    layer, heads = _check_layer_and_heads(layer, heads, n_layers, n_heads)
    params = {
        "attention": entries,
        "default_filter": "0",
        "root_div_id": _ROOT_DIV_ID,
        "layer": layer,
        "heads": heads,
        "include_layers": list(range(n_layers)),
    }
    controls = 'Layer: <select id="layer"></select> ' + _filter_select(entries)
    longest = max(len(token) for entry in entries for token in entry["left_text"])
    pad = max(0, longest * _CHAR_PX - _HEAD_LABEL_PX)
    css = f"#vis {{ padding-left: {pad}px; }} #vis svg {{ overflow: visible; }}"
    return _document("head_view.js", params, controls, title or "Attention head view", title, css)


def _model_view_document(entries: list[dict], dims: tuple[int, int], title: str | None) -> str:
    """Assemble the model view document (light theme) from bertviz entries."""
    n_layers, n_heads = dims
    params = {
        "attention": entries,
        "default_filter": "0",
        "display_mode": "light",
        "root_div_id": _ROOT_DIV_ID,
        "include_layers": list(range(n_layers)),
        "include_heads": list(range(n_heads)),
        "total_heads": n_heads,
    }
    controls = _filter_select(entries)
    return _document("model_view.js", params, controls, title or "Attention model view", title)


def _filter_select(entries: list[dict]) -> str:
    """bertviz's 'Attention:' dropdown, only when there is more than one entry."""
    if len(entries) < 2:
        return ""
    options = "".join(
        f'<option value="{i}">{html.escape(entry["name"])}</option>' for i, entry in enumerate(entries)
    )
    return f'Attention: <select id="filter">{options}</select>'


def _document(
    js_name: str, params: dict, controls: str, doc_title: str, heading: str | None, css: str = ""
) -> str:
    """Return the full HTML page: markup, vendored libraries, AMD shim and bertviz's view JS."""
    scripts = [_vendor_js(name) for name in VENDOR_SCRIPTS]
    scripts += [_AMD_SHIM, _view_js(js_name, params)]
    heading_html = f"<h3>{html.escape(heading)}</h3>\n" if heading else ""
    script_tags = "\n".join(_script_tag(js) for js in scripts)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
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


def _view_js(js_name: str, params: dict) -> str:
    """bertviz's view JS with its CDN ``require.config`` removed and params filled in."""
    source = _bertviz_js(js_name)
    source, n_configs = _REQUIRE_CONFIG.subn(
        "/* require.config removed: jquery and d3 are inlined above. */", source, count=1
    )
    if n_configs != 1 or _PARAMS_MARKER not in source:
        raise RuntimeError(
            f"bertviz's {js_name} has an unexpected layout (no require.config block or "
            f"no {_PARAMS_MARKER} marker); viz/bertviz_html.py needs updating"
        )
    return source.replace(_PARAMS_MARKER, _json_for_script(params) + ";", 1)


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside <script>: '<', '>' and '&' become \\u escapes."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=True)
    return re.sub(r"[<>&]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def _script_tag(js: str) -> str:
    """Wrap JS in an inline <script>, refusing text that could end or confuse the tag."""
    if _UNSAFE_IN_SCRIPT.search(js):
        raise RuntimeError("refusing to inline JavaScript containing '</script' or '<!--'")
    return f"<script>\n{js}\n</script>"


@lru_cache(maxsize=None)
def _vendor_js(name: str) -> str:
    """Text of a vendored library from viz/vendor/ (see MANIFEST.json)."""
    return (VENDOR_DIR / name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _bertviz_js(name: str) -> str:
    """Text of a JS file shipped in the installed bertviz package, without importing bertviz."""
    spec = importlib.util.find_spec("bertviz")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bertviz is not installed; install it with `pip install bertviz==1.4.1`")
    for location in spec.submodule_search_locations:
        path = Path(location) / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise RuntimeError(f"{name} not found in the installed bertviz package")
