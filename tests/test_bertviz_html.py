"""Fast checks of viz.bertviz_html (no browser): vendoring and serving, offline-ness, linked documents,
validation, escaping."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from viz import bertviz_scripts
from viz.bertviz_html import (
    FIT_TO_WIDTH,
    VENDOR_DIR,
    VENDOR_SCRIPTS,
    head_view_html,
    head_view_html_encoder_decoder,
    model_view_html,
    model_view_html_encoder_decoder,
    standalone_html,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_URL = "/app/static/bertviz"
IN_PAGE_MAX_BYTES = 60_000
L, H, T = 2, 3, 5
TOKENS = ["a", "</script>", "<img src=x onerror=alert(1)>", "b & c", "\u2028x"]


def attention(t_q: int = T, t_k: int = T, layers: int = L, heads: int = H, seed: int = 0) -> list[np.ndarray]:
    """Random row-stochastic attention, one (1, heads, t_q, t_k) array per layer."""
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.ones(t_k), size=(1, heads, t_q)) for _ in range(layers)]


def enc_dec_args(t_enc: int = T, t_dec: int = 3) -> tuple:
    """Positional arguments for the encoder-decoder builders."""
    return (
        attention(t_enc, t_enc),
        attention(t_dec, t_dec, seed=1),
        attention(t_dec, t_enc, seed=2),
        TOKENS[:t_enc],
        ["<s>", "x", "</script>"][:t_dec],
    )


def params_of(document: str) -> dict:
    """The params object embedded in the document's bertviz script."""
    match = re.search(r"const params = (\{.*?\}); // HACK", document)
    assert match, "params not found in document"
    return json.loads(match.group(1))


def markup_outside_scripts(document: str) -> str:
    """The document with every inline script's body removed (the JS cannot contain '</script')."""
    return re.sub(r"<script>.*?</script>", "<script></script>", document, flags=re.DOTALL)


def own_scripts(builder: str) -> int:
    """Inline scripts of a document besides the libraries: the AMD shim, the view, and a model view's fit."""
    return 2 + builder.startswith("model")


def script_tag_count(document: str) -> int:
    """Number of real <script> elements (library code mentions '<script>' in strings)."""
    return markup_outside_scripts(document).count("<script></script>")


ALL_BUILDERS = {
    "head": lambda: head_view_html(attention(), TOKENS),
    "head_pair": lambda: head_view_html(attention(), TOKENS, sentence_b_start=2, layer=1, heads=[0, 2]),
    "model": lambda: model_view_html(attention(), TOKENS, title="t"),
    "head_enc_dec": lambda: head_view_html_encoder_decoder(*enc_dec_args()),
    "model_enc_dec": lambda: model_view_html_encoder_decoder(*enc_dec_args()),
}


LINKED_BUILDERS = {
    "head": lambda: head_view_html(attention(), TOKENS, scripts_url=SCRIPTS_URL),
    "model": lambda: model_view_html(attention(), TOKENS, title="t", scripts_url=SCRIPTS_URL),
    "head_enc_dec": lambda: head_view_html_encoder_decoder(*enc_dec_args(), scripts_url=SCRIPTS_URL),
    "model_enc_dec": lambda: model_view_html_encoder_decoder(*enc_dec_args(), scripts_url=SCRIPTS_URL),
}


# ------------------------------------------------------------------ vendoring and serving


def manifest() -> dict:
    return json.loads((VENDOR_DIR / "MANIFEST.json").read_text())


def test_vendored_files_match_manifest_hashes():
    """The files the app serves (and inlines) are the ones whose sha256 the manifest pins."""
    entries = manifest()["files"]
    assert sorted(e["file"] for e in entries) == sorted(VENDOR_SCRIPTS)
    for entry in entries:
        data = (VENDOR_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert (VENDOR_DIR / entry["license_file"]).is_file(), entry["license_file"]
        assert entry["npm_package"] and entry["version"] and entry["license"]


def test_vendored_files_are_served_by_the_app():
    """Streamlit serves static/ next to app.py at /app/static/ when enableStaticServing is on."""
    assert VENDOR_DIR == REPO_ROOT / "static" / "bertviz" and (REPO_ROOT / "app.py").is_file()
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["enableStaticServing"] is True


def test_vendored_versions_are_the_ones_in_the_file_headers():
    for entry in manifest()["files"]:
        head = (VENDOR_DIR / entry["file"]).read_text()[:300]
        assert entry["version"] in head, entry["file"]


# ------------------------------------------------------------------ offline and linked


@pytest.mark.parametrize("name", ALL_BUILDERS)
def test_document_is_standalone_and_offline(name):
    document = ALL_BUILDERS[name]()
    assert document.startswith("<!doctype html>")
    assert document.rstrip().endswith("</html>")
    markup = markup_outside_scripts(document)
    assert script_tag_count(document) == len(VENDOR_SCRIPTS) + own_scripts(name)
    assert not re.search(r"\b(src|href)\s*=", markup, re.IGNORECASE)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", markup, re.IGNORECASE)
    assert not re.search(r"https?:|//", markup)
    assert "default-src 'none'" in markup  # CSP: the page may not fetch anything at all
    assert "cdnjs" not in document and "cdn.jsdelivr" not in document and "unpkg.com" not in document
    assert "PYTHON_PARAMS;" not in document
    for config in re.findall(r"require\.config\(\{.*?\}\);", document, re.DOTALL):
        assert "http" not in config and "//" not in config, config
    assert "define('jquery'" in document and "define('d3'" in document


@pytest.mark.parametrize("name", LINKED_BUILDERS)
def test_linked_document_links_the_served_libraries_with_their_hashes(name):
    document = LINKED_BUILDERS[name]()
    assert len(document.encode()) <= IN_PAGE_MAX_BYTES
    markup = markup_outside_scripts(document)
    srcs = re.findall(r'<script src="([^"]+)" integrity="sha256-([^"]+)"></script>', markup)
    assert [src for src, _ in srcs] == [f"{SCRIPTS_URL}/{name}" for name in VENDOR_SCRIPTS]
    hashes = {e["file"]: e["sha256"] for e in manifest()["files"]}
    for src, digest in srcs:
        assert base64.b64decode(digest).hex() == hashes[src.rsplit("/", 1)[1]], src
    assert script_tag_count(document) == own_scripts(name)  # no library inlined
    for marker in ("jQuery v2.2.4", "d3js.org v5.7.0", "RequireJS 2.3.6"):
        assert marker not in document
    assert "script-src 'self' 'unsafe-inline'" in markup and "default-src 'none'" in markup
    assert not re.search(r"https?:|//", markup)  # only the app's own origin
    assert markup.index("require-2.3.6.js") < document.index("define('jquery'")


@pytest.mark.parametrize("name", LINKED_BUILDERS)
def test_standalone_html_of_a_linked_document_is_the_standalone_build(name):
    """The download (standalone_html of the in-page document) is byte for byte the inlined build."""
    linked = LINKED_BUILDERS[name]()
    standalone = {"head": lambda: head_view_html(attention(), TOKENS),
                  "model": lambda: model_view_html(attention(), TOKENS, title="t"),
                  "head_enc_dec": lambda: head_view_html_encoder_decoder(*enc_dec_args()),
                  "model_enc_dec": lambda: model_view_html_encoder_decoder(*enc_dec_args())}[name]()
    assert standalone_html(linked) == standalone


def test_standalone_html_refuses_other_documents():
    with pytest.raises(ValueError, match="not a linked bertviz document"):
        standalone_html(head_view_html(attention(), TOKENS))


@pytest.mark.parametrize("url", ["app/static", "//evil.example/x", "https://cdn.example/x", '/a" onload="x', ""])
def test_scripts_url_must_be_a_path_on_the_apps_origin(url):
    with pytest.raises(ValueError, match="scripts_url must be an absolute path"):
        head_view_html(attention(), TOKENS, scripts_url=url)


def test_libraries_are_inlined_before_requirejs_and_view_code():
    document = head_view_html(attention(), TOKENS)
    positions = [document.index(marker) for marker in (
        "jQuery v2.2.4", "d3js.org v5.7.0", "RequireJS 2.3.6", "define('jquery'", "requirejs(['jquery', 'd3']",
    )]
    assert positions == sorted(positions)


def test_output_is_deterministic():
    assert head_view_html(attention(), TOKENS) == head_view_html(attention(), TOKENS)


def test_builders_import_neither_bertviz_nor_transformers():
    code = (
        "import sys, numpy as np\n"
        "from viz.bertviz_html import head_view_html, model_view_html, "
        "head_view_html_encoder_decoder, model_view_html_encoder_decoder\n"
        "a = [np.full((1, 2, 3, 3), 1 / 3)]\n"
        "t = ['x', 'y', 'z']\n"
        "head_view_html(a, t); model_view_html(a, t)\n"
        "head_view_html_encoder_decoder(a, a, a, t, t); model_view_html_encoder_decoder(a, a, a, t, t)\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
        "assert 'bertviz' not in sys.modules, 'bertviz was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ escaping


@pytest.mark.parametrize("name", ALL_BUILDERS)
def test_malicious_tokens_are_escaped(name):
    document = ALL_BUILDERS[name]()
    assert "<img" not in document
    assert document.count("</script>") == script_tag_count(document) == len(VENDOR_SCRIPTS) + own_scripts(name)
    assert "\\u003c/script\\u003e" in document
    assert "\u2028" not in document


def test_tokens_round_trip_through_embedded_params():
    params = params_of(head_view_html(attention(), TOKENS))
    assert params["attention"][0]["left_text"] == TOKENS
    assert params["attention"][0]["right_text"] == TOKENS


def test_title_is_html_escaped():
    document = model_view_html(attention(), TOKENS, title="<b>x</b> & </script>")
    assert "<h3>&lt;b&gt;x&lt;/b&gt; &amp; &lt;/script&gt;</h3>" in document
    assert "<title>&lt;b&gt;x" in document


# ------------------------------------------------------------------ params


def test_head_view_params_match_bertviz_layout():
    params = params_of(head_view_html(attention(), TOKENS, layer=1, heads=[0, 2]))
    assert params["layer"] == 1 and params["heads"] == [0, 2]
    assert params["include_layers"] == [0, 1] and params["default_filter"] == "0"
    attn = np.array(params["attention"][0]["attn"])
    assert attn.shape == (L, H, T, T)
    np.testing.assert_allclose(attn[1, 2], attention()[1][0, 2], atol=1e-4)


def test_model_view_is_light_and_lists_heads():
    params = params_of(model_view_html(attention(), TOKENS))
    assert params["display_mode"] == "light"
    assert params["include_heads"] == list(range(H)) and params["total_heads"] == H


def test_sentence_pair_adds_filter_entries():
    document = head_view_html(attention(), TOKENS, sentence_b_start=2)
    entries = params_of(document)["attention"]
    assert [e["name"] for e in entries][:2] == ["All", "Sentence A -> Sentence A"]
    assert np.array(entries[3]["attn"]).shape == (L, H, 2, 3)  # A -> B
    assert '<select id="filter">' in document


def test_encoder_decoder_entries():
    document = head_view_html_encoder_decoder(*enc_dec_args())
    entries = params_of(document)["attention"]
    assert [e["name"] for e in entries] == ["Encoder", "Decoder", "Cross"]
    assert entries[2]["left_text"] == ["<s>", "x", "</script>"] and entries[2]["right_text"] == TOKENS
    assert np.array(entries[2]["attn"]).shape == (L, H, 3, T)


@pytest.mark.parametrize("build", [head_view_html_encoder_decoder, model_view_html_encoder_decoder])
def test_encoder_decoder_views_open_on_the_selected_attention(build):
    document = build(*enc_dec_args(), selected="Cross")
    assert params_of(document)["default_filter"] == "2"  # bertviz shows params.attention[default_filter] first
    assert re.search(r'<select id="filter">.*<option value="2" selected>Cross</option>', document)
    assert len(re.findall(r"<option [^>]*selected", markup_outside_scripts(document))) == 1
    assert params_of(build(*enc_dec_args()))["default_filter"] == "0"  # default: the encoder
    with pytest.raises(ValueError, match="selected must be one of"):
        build(*enc_dec_args(), selected="cross")


def test_model_view_scales_to_its_frame_and_the_head_view_does_not_need_to():
    """model_view.js draws a fixed-width SVG: the document gives it a viewBox so it shrinks to the frame."""
    assert "FIT_TO_WIDTH" not in head_view_html(attention(), TOKENS)
    for document in (model_view_html(attention(), TOKENS), model_view_html_encoder_decoder(*enc_dec_args())):
        scripts = re.findall(r"<script>\n(.*?)\n</script>", document, flags=re.DOTALL)
        assert scripts[-1] == FIT_TO_WIDTH  # after bertviz's own script, which draws the SVG
    assert "DIV_WIDTH = 970" in bertviz_scripts.bertviz_js("model_view.js")  # the width the fit undoes


def test_encoder_decoder_allows_only_cross_attention():
    args = enc_dec_args()
    entries = params_of(model_view_html_encoder_decoder(None, None, args[2], args[3], args[4]))["attention"]
    assert [e["name"] for e in entries] == ["Cross"]


def test_accepts_torch_tensors_and_unbatched_layers():
    tensors = [torch.tensor(a[0], dtype=torch.bfloat16, requires_grad=False) for a in attention()]  # (H, T, T)
    params = params_of(head_view_html(tensors, TOKENS))
    assert np.array(params["attention"][0]["attn"]).shape == (L, H, T, T)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: head_view_html(attention(), TOKENS[:-1]), "5 query positions but 4 tokens"),
        (lambda: model_view_html(attention(T, T - 1), TOKENS), "4 key positions but 5 tokens"),
        (lambda: head_view_html([np.ones((2, H, T, T))], TOKENS), "batch size 2"),
        (lambda: head_view_html([np.ones((T, T))], TOKENS), r"must have shape \(1, H, T_q, T_k\)"),
        (lambda: head_view_html([], TOKENS), "at least one layer"),
        (lambda: head_view_html(attention() + attention(heads=H + 1), TOKENS), r"attention\[2\] has shape"),
        (lambda: head_view_html([np.full((1, H, T, T), np.nan)], TOKENS), "NaN"),
        (lambda: head_view_html(attention(), TOKENS, layer=L), "layer must be in 0..1"),
        (lambda: head_view_html(attention(), TOKENS, heads=[0, H]), "heads must be in 0..2"),
        (lambda: head_view_html(attention(), TOKENS, heads=[]), "heads must not be empty"),
        (lambda: head_view_html(attention(), TOKENS, sentence_b_start=0), "sentence_b_start must be in 1..4"),
        (lambda: model_view_html(attention(), TOKENS, sentence_b_start=T), "sentence_b_start"),
        (lambda: head_view_html_encoder_decoder(None, None, None, TOKENS, TOKENS), "at least one of"),
        (lambda: head_view_html_encoder_decoder(attention(), None, None, None, None), "encoder_tokens is required"),
        (lambda: model_view_html_encoder_decoder(None, None, attention(3, T), TOKENS, None),
         "decoder_tokens is required"),
        (lambda: head_view_html_encoder_decoder(attention(), attention(3, 3, layers=L + 1), None, TOKENS,
                                                ["a", "b", "c"]), "same number of layers and heads"),
        (lambda: head_view_html_encoder_decoder(None, None, attention(3, T), TOKENS, ["a", "b"]),
         "3 query positions but 2 tokens"),
    ],
)
def test_invalid_input_raises_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_tokens_must_be_a_list_of_str():
    with pytest.raises(TypeError, match="not a single str"):
        head_view_html(attention(), "abcde")
    with pytest.raises(TypeError, match=r"tokens\[1\] must be str"):
        head_view_html(attention(), ["a", 1, "c", "d", "e"])


def test_unexpected_bertviz_js_layout_fails_loudly(monkeypatch):
    monkeypatch.setattr(bertviz_scripts, "bertviz_js", lambda name: "requirejs([], function () {});")
    with pytest.raises(RuntimeError, match="unexpected layout"):
        head_view_html(attention(), TOKENS)


# ------------------------------------------------------------------ the app's views


@pytest.fixture(scope="module")
def prepared_reversal():
    from explain.examples import default_text
    from explain.trace import prepare_trace
    from model import load_checkpoint

    checkpoint = load_checkpoint(REPO_ROOT / "checkpoints" / "reversal-mha")
    return prepare_trace(checkpoint, default_text(checkpoint))


@pytest.mark.parametrize("static, base, frame_url", [
    (True, "", "/app/static/bertviz"), (True, "/class-1/", "/class-1/app/static/bertviz"), (False, "", None),
])
def test_app_views_link_where_the_server_serves_the_libraries(monkeypatch, prepared_reversal, static, base,
                                                               frame_url):
    """In the page: linked under the server's baseUrlPath, or standalone when static serving is off;
    the download is always the standalone file."""
    import streamlit as st

    from app_lib.bertviz_views import build_views

    options = {"server.enableStaticServing": static, "server.baseUrlPath": base}
    monkeypatch.setattr(st, "get_option", options.__getitem__)
    views = build_views(prepared_reversal, "reversal-mha", layer=1, head=2)
    for frame, download in ((views.head_frame, views.head_html), (views.model_frame, views.model_html)):
        assert download == (standalone_html(frame) if frame_url else frame)
        assert "RequireJS 2.3.6" in download and not re.search(r"<script src=", download)
        if frame_url:
            assert len(frame.encode()) <= IN_PAGE_MAX_BYTES
            assert f'<script src="{frame_url}/require-2.3.6.js"' in frame
    assert views.linked is (frame_url is not None)


@pytest.mark.parametrize("kind, shown", [("cross", "2"), ("decoder", "1"), ("encoder", "0"), (None, "0")])
def test_app_views_of_an_encoder_decoder_open_on_the_pages_attention(monkeypatch, kind, shown):
    import streamlit as st

    from app_lib.bertviz_views import build_views
    from explain.examples import default_text
    from explain.trace import prepare_trace
    from model import load_checkpoint

    monkeypatch.setattr(st, "get_option", {"server.enableStaticServing": True, "server.baseUrlPath": ""}.__getitem__)
    checkpoint = load_checkpoint(REPO_ROOT / "checkpoints" / "dates")
    views = build_views(prepare_trace(checkpoint, default_text(checkpoint)), "dates", layer=0, head=1, kind=kind)
    for document in (views.head_frame, views.model_frame):
        assert params_of(document)["default_filter"] == shown
        assert f'<option value="{shown}" selected>' in markup_outside_scripts(document)
