"""A head mask equals zeroing that head's columns of W_O, on every path (explicit, fast, cached)."""

from __future__ import annotations

import copy

import pytest
import torch

from model import trace
from tests.conftest import tiny_gpt, tiny_transformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KV_HEADS = [4, 2, 1]  # MHA, GQA, MQA


def zero_w_o_columns(attn, heads: list[int]) -> None:
    """Zero the columns of W_O that read these heads (out_proj.weight is (D, H * Dh))."""
    d_head = attn.d_head
    with torch.no_grad():
        for h in heads:
            attn.out_proj.weight[:, h * d_head:(h + 1) * d_head] = 0.0


def gpt_pair(n_kv_heads: int, off: dict[int, list[int]], **extra):
    model = tiny_gpt(n_kv_heads, **extra)
    zeroed = copy.deepcopy(model)
    mask = torch.ones(model.config.n_layers, model.config.n_heads)
    for layer, heads in off.items():
        mask[layer, heads] = 0.0
        zero_w_o_columns(zeroed.decoder.layers[layer].self_attn, heads)
    return model, zeroed, mask


OFF = {0: [1], 1: [0, 3]}


@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
def test_gpt_head_mask_equals_zeroed_w_o_fast_and_explicit(n_kv_heads):
    model, zeroed, mask = gpt_pair(n_kv_heads, OFF)
    idx = torch.randint(0, 13, (2, 9))
    expected = zeroed(idx)
    assert torch.allclose(model(idx, head_mask=mask), expected, atol=1e-6)  # fast path
    logits, _ = model(idx, return_trace=True, head_mask=mask)  # explicit path
    assert torch.allclose(logits, expected, atol=1e-6)
    assert not torch.allclose(model(idx), expected, atol=1e-4)  # the mask did something


@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
def test_gpt_head_mask_with_the_cache(n_kv_heads):
    model, zeroed, mask = gpt_pair(n_kv_heads, OFF)
    check_cached(model, zeroed, mask)


@pytest.mark.parametrize("extra", [dict(pos_encoding="rope"), dict(attention="mla"),
                                   dict(attention="mla", pos_encoding="rope")])
def test_head_mask_on_rope_and_mla(extra):
    model, zeroed, mask = gpt_pair(4, OFF, **extra)
    idx = torch.randint(0, 13, (2, 9))
    assert torch.allclose(model(idx, head_mask=mask), zeroed(idx), atol=1e-6)
    assert torch.allclose(model(idx, return_trace=True, head_mask=mask)[0], zeroed(idx), atol=1e-6)
    check_cached(model, zeroed, mask)


def check_cached(model, zeroed, mask) -> None:
    idx = torch.randint(0, 13, (2, 8))
    cache = model.new_cache()
    pieces = [model(idx[:, :5], cache=cache, head_mask=mask)]
    pieces += [model(idx[:, t:t + 1], cache=cache, head_mask=mask) for t in range(5, 8)]
    assert torch.allclose(torch.cat(pieces, dim=1), zeroed(idx), atol=1e-6)


def test_gpt_head_mask_scales_and_all_ones_changes_nothing():
    model = tiny_gpt(2)
    idx = torch.randint(0, 13, (1, 7))
    ones = torch.ones(2, 4)
    assert torch.equal(model(idx, head_mask=ones), model(idx))
    half = ones.clone()
    half[0, 2] = 0.5
    _, record = model(idx, return_trace=True, head_mask=half)
    _, plain = model(idx, return_trace=True)
    head = record.decoder.layers[0].self_attention.head_outputs
    assert torch.allclose(head[:, 2], 0.5 * plain.decoder.layers[0].self_attention.head_outputs[:, 2], atol=1e-7)


def test_trace_takes_the_head_mask_and_zeroes_the_head():
    model, zeroed, mask = gpt_pair(4, {1: [2]})
    idx = torch.randint(0, 13, (1, 6))
    record = trace(model, idx, head_mask=mask)
    assert torch.allclose(record.logits, trace(zeroed, idx).logits, atol=1e-6)
    assert torch.all(record.decoder.layers[1].self_attention.head_outputs[:, 2] == 0)


def test_a_head_mask_of_the_wrong_shape_is_refused():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="n_layers"):
        model(torch.zeros(1, 3, dtype=torch.long), head_mask=torch.ones(3, 4))
    with pytest.raises(ValueError, match="head mask"):
        model(torch.zeros(1, 3, dtype=torch.long), head_mask=torch.ones(2, 5))


@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
@pytest.mark.parametrize("kinds", [("encoder",), ("decoder",), ("cross",), ("encoder", "decoder", "cross")])
def test_transformer_head_mask_equals_zeroed_w_o(n_kv_heads, kinds):
    model = tiny_transformer(n_kv_heads)
    zeroed = copy.deepcopy(model)
    head_mask = {}
    for kind in kinds:
        mask = torch.ones(2, 4)
        mask[0, 1] = mask[1, 3] = 0.0
        head_mask[kind] = mask
        for layer, head in ((0, 1), (1, 3)):
            block = (zeroed.encoder if kind == "encoder" else zeroed.decoder).layers[layer]
            zero_w_o_columns(block.cross_attn if kind == "cross" else block.self_attn, [head])
    src, tgt = torch.randint(3, 15, (2, 7)), torch.randint(3, 11, (2, 5))
    src[1, 5:] = 0  # right padding in the source
    expected = zeroed(src, tgt, src_pad_id=0)
    assert torch.allclose(model(src, tgt, src_pad_id=0, head_mask=head_mask), expected, atol=1e-6)
    logits, _ = model(src, tgt, src_pad_id=0, return_trace=True, head_mask=head_mask)
    assert torch.allclose(logits, expected, atol=1e-6)
    assert torch.allclose(trace(model, src=src, tgt=tgt, src_pad_id=0, head_mask=head_mask).logits, expected, atol=1e-6)


def test_transformer_refuses_unknown_head_mask_kinds():
    model = tiny_transformer()
    with pytest.raises(ValueError, match="keys"):
        model(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), head_mask={"self": torch.ones(2, 4)})
