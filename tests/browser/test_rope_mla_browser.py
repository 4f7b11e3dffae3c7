"""Issue 16 in Chromium: every page of the tour on reversal-rope and reversal-mla, and what RoPE and MLA add.

The server comes from test_app_browser.py's module-scoped `app_url` fixture (a fresh `streamlit run app.py`,
user models in an empty temporary folder). Each page on reversal-mla is screenshotted to
tests/artifacts/rope_mla/; look at them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app_lib.tour import HOME, TOUR

from . import test_app_browser as base
from .test_app_browser import ROOT, RUN_TIMEOUT_MS, SHIPPED, assert_clean_app, open_app, screenshot

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MODELS = ("reversal-rope", "reversal-mla")
MLA = json.loads((ROOT / "checkpoints" / "reversal-mla" / "config.json").read_text(encoding="utf-8"))["config"]
MLA_LINE = f"MLA (latent {MLA['kv_latent_dim']} + rotary {MLA['mla_rope_dim']})"  # explain.cache.latent_curve's label


def url_path(tour_path: str) -> str:
    """The URL path st.navigation gives a page file: its stem, and nothing for the home page."""
    return "" if tour_path == HOME else Path(tour_path).stem


# Plain text of a plotly title or annotation, on one line: titles come in <b>, long ones broken with <br>
# (viz.style.wrap), and the figures escape HTML (&#x27;).
PLAIN_JS = ("s => new DOMParser().parseFromString(String(s || '').replace(/<br>/g, ' '), 'text/html')"
            ".body.textContent")
# For every drawn plotly chart: its title, its trace names and data, and the subplot titles (annotations) that
# name the panels of a multi-panel figure.
CHARTS_JS = f"""() => {{
    const plain = {PLAIN_JS};
    return [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({{
        title: plain(((plot.layout || {{}}).title || {{}}).text),
        traces: (plot.data || []).map(t => ({{name: plain(t.name), x: Array.from(t.x || []), y: Array.from(t.y || [])}})),
        panels: ((plot.layout || {{}}).annotations || []).map(a => plain(a.text)),
    }}));
}}"""
# True once charts whose titles start with each of the given prefixes are drawn.
TITLES_DRAWN_JS = f"""prefixes => {{
    const plain = {PLAIN_JS};
    const titles = [...document.querySelectorAll('.js-plotly-plot')].map(p => plain(((p.layout || {{}}).title || {{}}).text));
    return prefixes.every(prefix => titles.some(t => t.startsWith(prefix)));
}}"""
# True once the cache-size chart's measured line has this many points.
MEASURED_POINTS_JS = f"""count => {{
    const plain = {PLAIN_JS};
    return [...document.querySelectorAll('.js-plotly-plot')].some(p =>
        plain(((p.layout || {{}}).title || {{}}).text).startsWith('KV-cache size')
        && p.data.some(t => plain(t.name).endsWith('(measured)') && t.x.length === count));
}}"""

# What each page must show on each model: title prefixes of charts, each with panel names it must have.
EXPECTED: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
for name in MODELS:
    EXPECTED[(name, "positional")] = {"Pair 0 ": (), "Score of the same q and k by their distance": ()}
    EXPECTED[(name, "attention_steps")] = {
        "RoPE turns each token's q and k by its position": ("q before", "q rotated", "k before", "k rotated")}
    EXPECTED[(name, "compare_attention")] = {
        f"{member}: layer 0": () for member in ("reversal-mha", "reversal-gqa", "reversal-mqa", *MODELS)}
EXPECTED[("reversal-mla", "attention_steps")]["Multi-head latent attention"] = (
    f"c_KV (cached, {MLA['kv_latent_dim']})", "K of head 0 = W_UK c_KV", "V of head 0 = W_UV c_KV",
    f"rotary key (cached, {MLA['mla_rope_dim']})")
EXPECTED[("reversal-mla", "kv_cache")] = {"Layer 0 cache: ": ("c_KV", "rotary key"), "KV-cache size": ()}


def charts(page) -> list[dict]:
    return page.evaluate(CHARTS_JS)


def chart(page, prefix: str) -> dict:
    drawn = charts(page)
    found = [c for c in drawn if c["title"].startswith(prefix)]
    assert len(found) == 1, (prefix, [c["title"] for c in drawn])
    return found[0]


def wait_for_titles(page, prefixes) -> None:
    page.wait_for_function(TITLES_DRAWN_JS, arg=list(prefixes), timeout=RUN_TIMEOUT_MS)


def assert_no_error_box(page) -> None:
    """No st.error (explanations and warnings are fine, an error box means the page could not do its work)."""
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not errors, errors


def test_both_models_are_shipped():
    assert set(MODELS) <= {c["name"] for c in SHIPPED}, "reversal-rope and reversal-mla are in checkpoints/"


@pytest.mark.parametrize("tour_path", [p.path for p in TOUR])
@pytest.mark.parametrize("name", MODELS)
def test_every_tour_page_on_rope_and_mla(app_url, page, browser_log, artifacts_dir, name, tour_path):
    path = url_path(tour_path)
    expected = EXPECTED.get((name, path), {})
    open_app(page, f"{app_url}/{path}?checkpoint={name}", charts=len(expected))
    wait_for_titles(page, expected)
    assert_clean_app(page, browser_log)
    assert_no_error_box(page)
    assert page.get_by_role("combobox", name="Checkpoint").input_value() == name
    for prefix, panels in expected.items():
        shown = chart(page, prefix)["panels"]
        assert all(p in shown for p in panels), (prefix, panels, shown)
    if name == "reversal-mla":
        screenshot(page, artifacts_dir / "rope_mla" / f"mla_{path or 'home'}.png", max_height=7000)


@pytest.mark.parametrize("name", MODELS)
def test_positional_page_turns_q_and_k_with_the_distance_only(app_url, page, browser_log, name):
    open_app(page, f"{app_url}/positional?checkpoint={name}&rope_pair=3")
    wait_for_titles(page, ["Pair 3 ", "Score of the same q and k"])
    turning = chart(page, "Pair 3 ")
    assert re.search(r"turns [0-9.]+ rad", turning["title"]), turning["title"]
    queries = [t for t in turning["traces"] if t["name"].startswith("q (")]
    assert len(queries) > 1  # one arrow per shown position
    lengths = {round((t["x"][1] ** 2 + t["y"][1] ** 2) ** 0.5, 4) for t in queries}
    assert len(lengths) == 1, lengths  # a rotation keeps the pair's length
    curves = chart(page, "Score of the same q and k")["traces"]
    assert len(curves) == 2 and curves[0]["name"] != curves[1]["name"]  # the same q and k from two starts
    first, second = ({x: y for x, y in zip(c["x"], c["y"])} for c in curves)
    shared = sorted(set(first) & set(second))
    assert len(shared) > 1, (first, second)
    scale = max(abs(first[d]) for d in shared)
    assert max(abs(first[d] - second[d]) for d in shared) < 1e-3 * scale  # the distance counts, not the place
    formulas = page.locator(".katex-mathml annotation").all_text_contents()
    assert any(r"\theta_i = \mathrm{base}" in f for f in formulas), formulas  # the rotation formula, typeset
    assert page.get_by_text("the score depends on the distance only").is_visible()
    assert_clean_app(page, browser_log)


def test_compare_page_puts_mla_beside_mha_gqa_mqa(app_url, page, browser_log):
    open_app(page, f"{app_url}/compare_attention?checkpoint=reversal-mla")
    wait_for_titles(page, ["reversal-mla: layer 0", "reversal-mha: layer 0"])
    page.get_by_role("combobox", name="Preset").click()
    page.keyboard.type("DeepSeek-V3")  # keys open the list filtered (a click alone may leave it closed)
    page.get_by_role("option", name="DeepSeek-V3 (MLA)", exact=True).click()
    metric = page.get_by_test_id("stMetric").filter(has_text="MLA (latent 512 + rotary 64)")
    metric.wait_for(timeout=RUN_TIMEOUT_MS)
    assert "8.6 GiB" in metric.inner_text()  # 61 layers x 576 numbers x 131,072 tokens x 2 bytes
    assert_clean_app(page, browser_log)
    assert_no_error_box(page)


def test_kv_cache_page_grows_the_latent_rows_on_the_mla_line(app_url, page, browser_log, artifacts_dir):
    open_app(page, f"{app_url}/kv_cache?checkpoint=reversal-mla")
    wait_for_titles(page, ["Layer 0 cache: ", "KV-cache size"])
    prompt = int(re.search(r"cache: (\d+) tokens", chart(page, "Layer 0 cache: ")["title"])[1])
    for step in (1, 2):
        page.get_by_role("button", name="Next token").click()
        grown = f"Layer 0 cache: {prompt + step} tokens × (c_KV {MLA['kv_latent_dim']} + rotary key {MLA['mla_rope_dim']})"
        wait_for_titles(page, [grown])
        page.get_by_text(f"Step {step}", exact=False).first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(MEASURED_POINTS_JS, arg=3, timeout=RUN_TIMEOUT_MS)  # prefill and two steps
    lines = {t["name"]: t for t in chart(page, "KV-cache size")["traces"]}
    assert f"{MLA_LINE} (formula)" in lines and "MHA (4 K/V heads) (formula)" in lines, list(lines)
    measured = lines["reversal-mla (measured)"]
    mla = lines[f"{MLA_LINE} (formula)"]
    assert measured["y"] == [mla["y"][mla["x"].index(x)] for x in measured["x"]]  # the cache is the latent's size
    mha = lines["MHA (4 K/V heads) (formula)"]
    per_token = MLA["kv_latent_dim"] + MLA["mla_rope_dim"]
    assert mha["y"][0] / mla["y"][0] == pytest.approx(2 * MLA["n_heads"] * (MLA["d_model"] // MLA["n_heads"])
                                                      / per_token)
    assert_clean_app(page, browser_log)
    assert_no_error_box(page)
    screenshot(page, artifacts_dir / "rope_mla" / "mla_kv_cache_after_two_steps.png", max_height=7000)
