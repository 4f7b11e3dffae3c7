"""KV-cache arithmetic, the published presets, and the one rule for heads: which K/V head a query head reads."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_gpt

from model.attention import attention_steps
from model.config import GPTConfig, attention_variant, kv_head_of
from model.kv_math import PRESETS, attention_parameters, bytes_per_token, cache_bytes, format_bytes, kv_variants

# ---------------------------------------------------------------- cache arithmetic


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_cache_bytes_equal_the_model_cache(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.randint(0, 13, (3, 7)), cache=cache)
        model(torch.randint(0, 13, (3, 1)), cache=cache)
    assert cache.nbytes == cache_bytes(2, n_kv_heads, 8, tokens=8, batch=3, bytes_per_element=4)
    assert attention_variant(4, n_kv_heads) == {4: "MHA", 2: "GQA", 1: "MQA"}[n_kv_heads]


def test_cache_formula_scales_with_kv_heads():
    mha, gqa, mqa = (cache_bytes(32, kv, 128, 4096, 1, 2) for kv in (32, 8, 1))
    assert mha == 2 * 1024**3 and mha == 4 * gqa == 32 * mqa
    assert bytes_per_token(32, 32, 128, 2) == 512 * 1024
    with pytest.raises(ValueError):
        cache_bytes(0, 1, 1, 1)
    with pytest.raises(ValueError):
        cache_bytes(1, 1, 1, -1)


def test_attention_parameters_count_the_module():
    for kv in (4, 2, 1):
        attn = tiny_gpt(kv).decoder.layers[0].self_attn
        assert attention_parameters(32, 4, kv) == sum(p.numel() for p in attn.parameters())


@pytest.mark.parametrize("name, kind, kib_per_token", [
    ("GPT-2 small (124M)", "MHA", 36), ("GPT-2 XL (1.5B)", "MHA", 300), ("Llama-2-7B (MHA)", "MHA", 512),
    ("Llama-2-70B (GQA)", "GQA", 320), ("Mistral-7B (GQA)", "GQA", 128), ("Falcon-7B (MQA)", "MQA", 8),
])
def test_presets(name, kind, kib_per_token):
    shape = PRESETS[name]
    assert shape.kind == kind and shape.n_heads % shape.n_kv_heads == 0 and shape.source
    assert bytes_per_token(shape.n_layers, shape.n_kv_heads, shape.d_head, 2) == kib_per_token * 1024
    variants = {v.variant: v.n_kv_heads for v in shape.variants()}
    assert variants["MHA"] == shape.n_heads and variants["MQA"] == 1
    assert "GQA" not in variants or (shape.n_heads % variants["GQA"] == 0 and 1 < variants["GQA"] < shape.n_heads)


def test_format_bytes():
    assert (format_bytes(512), format_bytes(1536), format_bytes(2 * 1024**3)) == ("512 B", "1.5 KiB", "2.0 GiB")


@pytest.mark.parametrize("n_heads, n_kv_heads, expected", [
    (4, 4, [("MHA", 4), ("GQA", 2), ("MQA", 1)]),
    (4, 2, [("MHA", 4), ("GQA", 2), ("MQA", 1)]),
    (64, 8, [("MHA", 64), ("GQA", 8), ("MQA", 1)]),
    (32, 32, [("MHA", 32), ("GQA", 8), ("MQA", 1)]),
    (71, 1, [("MHA", 71), ("MQA", 1)]),  # a prime head count has no grouped version
    (2, 2, [("MHA", 2), ("MQA", 1)]),
    (1, 1, [("MHA", 1)]),
])
def test_kv_variants(n_heads, n_kv_heads, expected):
    assert [(v.variant, v.n_kv_heads) for v in kv_variants(n_heads, n_kv_heads)] == expected
    assert all(attention_variant(n_heads, v.n_kv_heads) == v.variant for v in kv_variants(n_heads, n_kv_heads))


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_kv_head_of_is_the_grouping_attention_computes(n_kv_heads):
    """Query head h's output equals single-head attention of q_h over key/value head kv_head_of(h)."""
    torch.manual_seed(0)
    n_heads, t, d_head = 4, 5, 3
    q = torch.randn(1, n_heads, t, d_head)  # (B, H, T, Dh)
    k, v = torch.randn(1, n_kv_heads, t, d_head), torch.randn(1, n_kv_heads, t, d_head)  # (B, Hkv, T, Dh)
    grouped = attention_steps(q, k, v).output  # (B, H, T, Dh)
    config = GPTConfig(vocab_size=5, max_len=8, d_model=12, n_heads=n_heads, n_layers=1, n_kv_heads=n_kv_heads)
    for head in range(n_heads):
        g = config.kv_head_of(head)
        assert g == kv_head_of(head, n_heads, n_kv_heads)
        alone = attention_steps(q[:, head : head + 1], k[:, g : g + 1], v[:, g : g + 1]).output  # (1, 1, T, Dh)
        assert torch.allclose(grouped[:, head : head + 1], alone, atol=1e-6)
    with pytest.raises(ValueError):
        config.kv_head_of(n_heads)
