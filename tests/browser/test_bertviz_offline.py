"""The bertviz views from viz.bertviz_html render in a real browser with the network cut off.

Standalone documents (the downloads) render from a file or from memory; linked documents (the in-page
views) render in srcdoc iframes like st.iframe's, loading the libraries from the page's origin at
/app/static/bertviz/, where the app serves them, and refusing a library that does not match its hash.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

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

pytestmark = pytest.mark.browser

N_LAYERS, N_HEADS = 2, 4
TOKENS = ["[CLS]", "</script>", "<img src=x onerror=alert(1)>", "cats", "&amp;", "[SEP]"]
DECODER_TOKENS = ["<s>", "les", "<img src=x onerror=alert(2)>", "chats"]
RENDER_TIMEOUT_MS = 10_000
SCRIPTS_URL = "/app/static/bertviz"
# st.iframe's sandbox (Streamlit 1.67, frontend IFrameUtil): same origin, so 'self' is the app's origin.
ST_IFRAME_SANDBOX = ("allow-forms allow-modals allow-popups allow-popups-to-escape-sandbox allow-same-origin "
                     "allow-scripts allow-downloads")
ADD_SRCDOC_IFRAMES = """documents => documents.forEach(doc => {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', SANDBOX);
  frame.srcdoc = doc;
  frame.style.height = '600px';
  document.body.appendChild(frame);
})""".replace("SANDBOX", repr(ST_IFRAME_SANDBOX))


def random_attention(t_q: int, t_k: int, seed: int) -> list[np.ndarray]:
    """Row-stochastic attention, one (1, H, t_q, t_k) array per layer."""
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.full(t_k, 0.3), size=(1, N_HEADS, t_q)) for _ in range(N_LAYERS)]


def open_view(page, document: str, name: str, artifacts_dir: Path, static_server: str) -> None:
    """Write ``document`` to the artifacts dir, load it over local HTTP, wait for the SVG lines."""
    (artifacts_dir / name).write_text(document, encoding="utf-8")
    page.goto(f"{static_server}/{name}")
    page.wait_for_selector("#vis svg line", state="attached", timeout=RENDER_TIMEOUT_MS)


def visible_line_count(page) -> int:
    """Number of attention lines in the view with a non-zero stroke opacity."""
    return page.eval_on_selector_all(
        "#vis svg line",
        "lines => lines.filter(l => parseFloat(l.getAttribute('stroke-opacity')) > 0).length",
    )


def screenshot(page, path: Path) -> None:
    """Screenshot of just the visualisation (title, controls and SVG)."""
    page.locator("body").screenshot(path=str(path))


def svg_texts(page) -> list[str]:
    """All text labels drawn in the view's SVG."""
    return page.locator("#vis svg text").all_text_contents()


def assert_no_injected_markup(page) -> None:
    """The malicious tokens must stay text: no <img> element and no stray <script> content (the three
    libraries, the AMD shim and the view, and in a model view FIT_TO_WIDTH)."""
    assert page.locator("img").count() == 0
    fits = page.evaluate("fit => [...document.scripts].filter(s => s.textContent.trim() === fit).length", FIT_TO_WIDTH)
    assert fits <= 1 and page.evaluate("document.querySelectorAll('script').length") == 5 + fits


def test_head_view_renders_offline(page_offline, browser_log, artifacts_dir, static_server):
    page = page_offline
    open_view(page, head_view_html(random_attention(6, 6, 0), TOKENS), "bertviz_head_view.html",
              artifacts_dir, static_server)

    assert page.locator("#vis svg line").count() == N_HEADS * 6 * 6
    assert visible_line_count(page) > 0
    assert TOKENS[1] in svg_texts(page) and TOKENS[2] in svg_texts(page)
    assert page.locator("#layer option").all_text_contents() == ["0", "1"]
    screenshot(page, artifacts_dir / "bertviz_head_view.png")

    page.select_option("#layer", "1")
    page.locator("#vis svg #left text", has_text="cats").hover()
    screenshot(page, artifacts_dir / "bertviz_head_view_hover.png")
    assert page.locator("#vis svg line").count() == N_HEADS * 6 * 6
    assert_no_injected_markup(page)
    browser_log.assert_clean()


def test_head_view_renders_from_set_content(page_offline, browser_log):
    """Same document loaded without any URL (as in an iframe srcdoc)."""
    page = page_offline
    page.set_content(head_view_html(random_attention(6, 6, 1), TOKENS, sentence_b_start=3))
    page.wait_for_selector("#vis svg line", state="attached", timeout=RENDER_TIMEOUT_MS)

    options = page.locator("#filter option").all_text_contents()
    assert options[0] == "All" and len(options) == 5
    page.select_option("#filter", "3")  # Sentence A -> Sentence B: 3 x 3 tokens
    assert page.locator("#vis svg line").count() == N_HEADS * 3 * 3
    assert_no_injected_markup(page)
    browser_log.assert_clean()


def test_model_view_renders_offline(page_offline, browser_log, artifacts_dir, static_server):
    page = page_offline
    open_view(page, model_view_html(random_attention(6, 6, 2), TOKENS, title="Model view </script>"),
              "bertviz_model_view.html", artifacts_dir, static_server)

    assert page.locator("#vis svg line").count() == N_LAYERS * N_HEADS * 6 * 6
    assert page.locator("h3").inner_text() == "Model view </script>"
    page.locator("#vis svg rect.attn_background").first.click(force=True)
    page.wait_for_selector("#vis svg text.token", timeout=RENDER_TIMEOUT_MS)
    assert TOKENS[2] in page.locator("#vis svg text.token").all_text_contents()
    screenshot(page, artifacts_dir / "bertviz_model_view.png")
    assert_no_injected_markup(page)
    browser_log.assert_clean()


def encoder_decoder_inputs() -> tuple[list, list, list, list[str], list[str]]:
    """Encoder (6 tokens) / decoder (4 tokens) self- and cross-attention, 2 layers x 4 heads."""
    t_enc, t_dec = len(TOKENS), len(DECODER_TOKENS)
    return (
        random_attention(t_enc, t_enc, 3),
        random_attention(t_dec, t_dec, 4),
        random_attention(t_dec, t_enc, 5),
        TOKENS,
        DECODER_TOKENS,
    )


def test_encoder_decoder_head_view_renders_offline(page_offline, browser_log, artifacts_dir, static_server):
    page = page_offline
    open_view(page, head_view_html_encoder_decoder(*encoder_decoder_inputs()),
              "bertviz_head_view_encoder_decoder.html", artifacts_dir, static_server)

    assert page.locator("#filter option").all_text_contents() == ["Encoder", "Decoder", "Cross"]
    assert page.locator("#vis svg line").count() == N_HEADS * 6 * 6
    page.select_option("#filter", "2")
    assert page.locator("#vis svg line").count() == N_HEADS * 4 * 6
    texts = svg_texts(page)
    assert DECODER_TOKENS[2] in texts and TOKENS[1] in texts
    screenshot(page, artifacts_dir / "bertviz_head_view_encoder_decoder.png")
    assert_no_injected_markup(page)
    browser_log.assert_clean()


def test_encoder_decoder_model_view_renders_offline(page_offline, browser_log, artifacts_dir, static_server):
    page = page_offline
    open_view(page, model_view_html_encoder_decoder(*encoder_decoder_inputs()),
              "bertviz_model_view_encoder_decoder.html", artifacts_dir, static_server)

    page.select_option("#filter", "1")
    assert page.locator("#vis svg line").count() == N_LAYERS * N_HEADS * 4 * 4
    screenshot(page, artifacts_dir / "bertviz_model_view_encoder_decoder.png")
    assert_no_injected_markup(page)
    browser_log.assert_clean()


def test_page_offline_blocks_and_records_remote_requests(page_offline, browser_log):
    """Guard for the guard: a CDN script (what bertviz itself would load) is aborted and recorded."""
    cdn = "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"
    page_offline.set_content(f'<script src="{cdn}"></script><p>hi</p>')
    assert browser_log.blocked_urls == [cdn]
    assert page_offline.evaluate("typeof window.requirejs") == "undefined"


# ------------------------------------------------------------------ linked documents, as in the app


class _RecordingHandler(SimpleHTTPRequestHandler):
    """Static files, quietly, with every requested path recorded on the server."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature fixed by base class
        return

    def do_GET(self) -> None:  # noqa: N802 - name fixed by base class
        self.server.paths.append(self.path)
        super().do_GET()


@pytest.fixture
def app_origin(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A local server laid out like the app's: a page below / and the libraries at /app/static/bertviz/.

    Yields its base URL, the folder it serves and the list of paths requested from it.
    """
    shutil.copytree(VENDOR_DIR, tmp_path / "app" / "static" / "bertviz")
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "heatmaps.html").write_text("<!doctype html><title>app</title><body></body>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RecordingHandler, directory=str(tmp_path)))
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path, server.paths
    server.shutdown()
    server.server_close()


def open_in_srcdoc_iframes(page, base: str, documents: list[str]) -> list:
    """Open a page two folders below the origin and show each document in a srcdoc iframe."""
    page.goto(f"{base}/pages/heatmaps.html")
    page.evaluate(ADD_SRCDOC_IFRAMES, documents)
    return [page.frame_locator("iframe").nth(i) for i in range(len(documents))]


def test_linked_views_render_in_srcdoc_iframes_from_the_apps_origin(page_offline, browser_log, app_origin):
    base, _, paths = app_origin
    head = head_view_html(random_attention(6, 6, 0), TOKENS, layer=1, heads=[2], scripts_url=SCRIPTS_URL)
    model = model_view_html_encoder_decoder(*encoder_decoder_inputs(), title="</script>", scripts_url=SCRIPTS_URL)
    head_frame, model_frame = open_in_srcdoc_iframes(page_offline, base, [head, model])

    head_frame.locator("#vis svg line").first.wait_for(state="attached", timeout=RENDER_TIMEOUT_MS)
    model_frame.locator("#vis svg line").first.wait_for(state="attached", timeout=RENDER_TIMEOUT_MS)
    assert head_frame.locator("#vis svg line").count() == N_HEADS * 6 * 6
    assert head_frame.locator("#layer").input_value() == "1"
    assert model_frame.locator("#filter option").all_text_contents() == ["Encoder", "Decoder", "Cross"]
    assert model_frame.locator("#vis svg line").count() == N_LAYERS * N_HEADS * 6 * 6
    assert model_frame.locator("h3").inner_text() == "</script>"
    # The absolute paths resolved against the parent page's origin, not its folder.
    assert {f"{SCRIPTS_URL}/{name}" for name in VENDOR_SCRIPTS} <= set(paths)
    assert not [p for p in paths if p.startswith("/pages/app/")]
    assert page_offline.locator("img").count() == 0
    browser_log.assert_clean()  # no CSP, integrity or load error


def test_a_served_library_that_does_not_match_its_hash_is_not_run(page_offline, browser_log, app_origin):
    base, folder, _ = app_origin
    served = folder / "app" / "static" / "bertviz" / VENDOR_SCRIPTS[0]
    served.write_text(served.read_text(encoding="utf-8") + "\nwindow.tampered = true;\n", encoding="utf-8")
    # The view's own code runs once the libraries have loaded or been refused; without jQuery it throws
    # ("$ is not a function"), and nothing can draw after that.
    with page_offline.expect_event("pageerror", timeout=RENDER_TIMEOUT_MS):
        (frame,) = open_in_srcdoc_iframes(page_offline, base, [head_view_html(random_attention(6, 6, 0), TOKENS,
                                                                              scripts_url=SCRIPTS_URL)])
    assert frame.locator("#vis svg line").count() == 0
    assert any("integrity" in message for message in browser_log.console_errors), browser_log.console_errors


def test_the_download_of_a_linked_view_renders_without_any_request(page_offline, browser_log):
    linked = model_view_html_encoder_decoder(*encoder_decoder_inputs(), scripts_url=SCRIPTS_URL)
    requests: list[str] = []
    page_offline.on("request", lambda request: requests.append(request.url))
    page_offline.set_content(standalone_html(linked))
    page_offline.wait_for_selector("#vis svg line", state="attached", timeout=RENDER_TIMEOUT_MS)
    page_offline.select_option("#filter", "1")
    assert page_offline.locator("#vis svg line").count() == N_LAYERS * N_HEADS * 4 * 4
    assert requests == []
    assert_no_injected_markup(page_offline)
    browser_log.assert_clean()
