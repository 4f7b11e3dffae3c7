"""The bertviz views from viz.bertviz_html render in a real browser with the network cut off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viz.bertviz_html import (
    head_view_html,
    head_view_html_encoder_decoder,
    model_view_html,
    model_view_html_encoder_decoder,
)

pytestmark = pytest.mark.browser

N_LAYERS, N_HEADS = 2, 4
TOKENS = ["[CLS]", "</script>", "<img src=x onerror=alert(1)>", "cats", "&amp;", "[SEP]"]
DECODER_TOKENS = ["<s>", "les", "<img src=x onerror=alert(2)>", "chats"]
RENDER_TIMEOUT_MS = 10_000


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
    """The malicious tokens must stay text: no <img> element and no stray <script> content."""
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 5


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
