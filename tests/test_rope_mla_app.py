"""Every page on the RoPE and MLA checkpoints (AppTest), the RoPE and MLA sections, and their records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import figures, open_page

from app_lib.tour import TOUR
from explain.cache import CacheBreakdown, attention_summary, calculate, latent_curve, preset_rows
from explain.rope import latent_rows, rope_pairs, rope_view, rotation_rows
from explain.trace import prepare_trace
from model import load_checkpoint
from model.attention import MultiHeadAttention
from model.kv_math import PRESETS, latent_cache_bytes, mla_attention_parameters

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
MODELS = ["reversal-rope", "reversal-mla"]
PAGES = [page.path for page in TOUR]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("name", MODELS)
def test_every_page_opens_on_rope_and_mla(page, name):
    open_page(page, {"checkpoint": name})


def test_positional_page_turns_q_and_k():
    at = open_page("pages/positional.py", {"checkpoint": "reversal-rope", "rope_head": "2", "rope_pair": "3"})
    assert any(t.startswith("Pair 3 ") for t in figures(at))
    assert any(t.startswith("Score of the same q and k") for t in figures(at))
    assert any("depends on the distance only" in c.value for c in at.caption)


def test_attention_steps_shows_rotation_and_latent():
    at = open_page("pages/attention_steps.py", {"checkpoint": "reversal-mla", "layer": "1", "head": "3"})
    shown = figures(at)
    assert any(t.startswith("Multi-head latent attention") for t in shown)
    assert any(t.startswith("RoPE turns") for t in shown)
    assert any("c_KV" in row for row in at.dataframe[0].value.to_string().splitlines())


def test_rope_records_come_from_the_model():
    loaded = load_checkpoint(ROOT / "reversal-rope")
    prepared = prepare_trace(loaded, "1 2 3 4 5 6 7 8")
    att = prepared.attention("self")[0]
    view = rope_view(loaded.config, att, prepared.labels, 0, 1, pair=2)
    assert view.frequency == pytest.approx(loaded.config.rope_base ** (-4 / loaded.config.d_head))
    assert view.max_curve_difference < 1e-3 * max(abs(s) for s in view.curves[0].scores)
    lengths = np.linalg.norm(view.q_pair, axis=1)
    assert np.allclose(lengths, lengths[0], atol=1e-5)  # a rotation keeps the pair's length
    rows = rotation_rows(att, 1, 1)
    assert np.allclose(rows.q_after, att.q[0, 1].numpy()) and rope_pairs(loaded.config) == loaded.config.d_head // 2
    assert latent_rows(att, 1) is None


def test_mla_records_and_cache_arithmetic():
    loaded = load_checkpoint(ROOT / "reversal-mla")
    c = loaded.config
    prepared = prepare_trace(loaded, "1 2 3 4 5 6 7 8")
    att = prepared.attention("self")[1]
    rows = latent_rows(att, 2)
    assert rows.cached_per_token == c.kv_latent_dim + c.mla_rope_dim and rows.mha_per_token == 2 * c.n_heads * c.d_head
    assert rotation_rows(att, 2, 2).width == c.mla_rope_dim == 2 * rope_pairs(c)
    summary = attention_summary("reversal-mla", c, loaded.model.num_parameters)
    module = loaded.model.decoder.layers[0].self_attn
    assert summary.attention == "MLA"
    assert summary.attention_parameters == sum(p.numel() for p in module.parameters())
    mine = MultiHeadAttention(32, 4, rope_base=1e4, kv_latent_dim=12, rope_dim=4)
    assert mla_attention_parameters(32, 4, 12, 4) == sum(p.numel() for p in mine.parameters())


def test_calculator_and_presets_offer_mla_with_deepseek_shapes():
    results = calculate(60, 128, 128, 128, 4096, 1, "float16", latent=(512, 64))
    assert results[-1].label == "MLA (latent 512 + rotary 64)"
    assert results[-1].total_bytes == latent_cache_bytes(60, 512, 64, 4096, 1, 2) == 60 * 576 * 4096 * 2
    assert results[0].total_bytes // results[-1].total_bytes == 2 * 128 * 128 // 576  # 56x smaller than MHA
    for name, layers in (("DeepSeek-V2 (MLA)", 60), ("DeepSeek-V3 (MLA)", 61)):
        shape = PRESETS[name]
        assert (shape.kind, shape.n_layers, shape.kv_latent_dim, shape.rope_dim) == ("MLA", layers, 512, 64)
        assert shape.bytes_per_token(2) == layers * 576 * 2
    row = next(r for r in preset_rows() if r.model == "DeepSeek-V2 (MLA)")
    assert row.kib_per_token == 60 * 576 * 2 / 1024


def test_compare_page_calculator_has_the_mla_row():
    at = open_page("pages/compare_attention.py", {"checkpoint": "reversal-mla"})
    assert not any(m.label.startswith("MLA") for m in at.metric)
    at.selectbox(key="calc_preset").set_value("DeepSeek-V3 (MLA)").run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["MLA (latent 512 + rotary 64)"] == "8.6 GiB"  # 61 x 576 x 131072 x 2 bytes
    assert values["MHA (128 K/V heads)"] == "488.0 GiB"  # 2 x 61 x 128 x 128 x 131072 x 2
    at.toggle(key="calc_mla").set_value(False).run()
    assert not any(m.label.startswith("MLA") for m in at.metric)


def test_cache_breakdown_of_an_mla_model_is_the_measured_cache():
    loaded = load_checkpoint(ROOT / "reversal-mla")
    c = loaded.config
    cache = loaded.model.new_cache()
    import torch

    loaded.model(torch.randint(0, 10, (2, 5)), cache=cache)
    breakdown = CacheBreakdown(c.n_layers, c.n_heads, c.n_kv_heads, c.d_head, 5, 2, 4, c.kv_latent_dim, c.mla_rope_dim)
    assert breakdown.total_bytes == cache.nbytes and breakdown.variant == "MLA"
    assert breakdown.formula.startswith(f"{c.n_layers} × ({c.kv_latent_dim} + {c.mla_rope_dim}) × 5 × 2 × 4 bytes")
    curve = latent_curve(c.n_layers, c.n_heads, c.kv_latent_dim, c.mla_rope_dim, (1, 5))
    assert curve.bytes_by_step[1] * 2 == cache.nbytes


def test_latent_cache_rows_split_what_the_cache_holds():
    from explain.rope import latent_cache_rows
    from model.generation_trace import GenerationSession
    from viz.figures_rope import plot_latent_cache

    loaded = load_checkpoint(ROOT / "reversal-mla")
    c = loaded.config
    session = GenerationSession(loaded.model, [1, 2, 3, 4])
    session.step(0.0, None, None, ())
    rows = latent_cache_rows(session, 1, c.kv_latent_dim)
    assert rows.latent.shape == (4, c.kv_latent_dim) and rows.rotary_key.shape == (4, c.mla_rope_dim)
    cached = loaded.model.decoder.layers[1].self_attn  # the rows are the module's own [c_KV ; k_R]
    assert np.allclose(rows.latent, session.cache.self_attention[1].keys[0, 0, :, : cached.latent.latent_dim].numpy())
    assert plot_latent_cache(rows, ["a", "b", "c", "d"]).layout.title.text.startswith("Layer 1 cache: 4 tokens")
