"""MultiHeadAttention against PyTorch's own attention, masks, and the GQA/MQA grouping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model import MultiHeadAttention, attention, causal_mask, combine_masks, padding_mask

D, H, B, T, S = 32, 4, 3, 7, 5


def reference_mha(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """torch.nn.MultiheadAttention holding exactly our weights."""
    ref = nn.MultiheadAttention(D, H, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref.eval()


def random_pad_ids(length: int) -> torch.Tensor:
    ids = torch.randint(1, 9, (B, length))
    ids[0, -2:] = 0  # row 0 has two pad tokens, row 1 one, row 2 none
    ids[1, -1:] = 0
    return ids


@pytest.mark.parametrize("kind", ["self", "causal", "padding", "causal+padding", "cross", "cross+padding"])
def test_matches_torch_multihead_attention(kind):
    ours = MultiHeadAttention(D, H).eval()
    ref = reference_mha(ours)
    x = torch.randn(B, T, D)
    context = torch.randn(B, S, D) if kind.startswith("cross") else None
    keys = context if context is not None else x
    t_k = keys.shape[1]
    pad_ids = random_pad_ids(t_k) if "padding" in kind else None
    mask = combine_masks(
        causal_mask(T) if "causal" in kind else None,
        padding_mask(pad_ids, 0) if pad_ids is not None else None,
    )
    out, weights = ours(x, context=context, mask=mask, need_weights=True)
    ref_out, ref_weights = ref(
        x, keys, keys,
        attn_mask=~causal_mask(T) if "causal" in kind else None,  # torch's convention: True = blocked
        key_padding_mask=(pad_ids == 0) if pad_ids is not None else None,
        need_weights=True, average_attn_weights=False,
    )
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=1e-5, rtol=0)
    fast = ours(x, context=context, mask=mask)  # the scaled_dot_product_attention path
    torch.testing.assert_close(fast, ref_out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
@pytest.mark.parametrize("masked", [False, True])
def test_grouped_heads_match_sdpa_and_explicit_repeat(n_kv_heads, masked):
    q = torch.randn(B, H, T, 8)
    k, v = torch.randn(B, n_kv_heads, T, 8), torch.randn(B, n_kv_heads, T, 8)
    mask = causal_mask(T) if masked else None
    out, weights = attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    group = H // n_kv_heads
    k_rep, v_rep = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # head h -> h // group
    ref_rep = F.scaled_dot_product_attention(q, k_rep, v_rep, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, ref_rep, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T))


def test_n_kv_heads_equal_to_heads_is_plain_mha():
    mha = MultiHeadAttention(D, H, n_kv_heads=H)
    assert mha.k_proj.out_features == D and mha.v_proj.out_features == D


@pytest.mark.parametrize("n_kv_heads", [1, 2])
def test_kv_projections_are_narrow(n_kv_heads):
    mha = MultiHeadAttention(D, H, n_kv_heads=n_kv_heads)
    assert mha.k_proj.weight.shape == (n_kv_heads * D // H, D)
    assert mha.v_proj.weight.shape == (n_kv_heads * D // H, D)
    assert mha.q_proj.weight.shape == (D, D)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_module_grouping_matches_repeated_kv_module(n_kv_heads):
    """A GQA module equals an MHA module whose K/V weights are the GQA ones repeated per group."""
    gqa = MultiHeadAttention(D, H, n_kv_heads).eval()
    mha = MultiHeadAttention(D, H).eval()
    d_head, group = D // H, H // n_kv_heads

    def repeat_rows(w):  # (Hkv * Dh, ...) -> (H * Dh, ...) head h gets kv head h // group
        return w.view(n_kv_heads, d_head, *w.shape[1:]).repeat_interleave(group, 0).reshape(D, *w.shape[1:])

    with torch.no_grad():
        mha.q_proj.load_state_dict(gqa.q_proj.state_dict())
        mha.out_proj.load_state_dict(gqa.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            getattr(mha, name).weight.copy_(repeat_rows(getattr(gqa, name).weight))
            getattr(mha, name).bias.copy_(repeat_rows(getattr(gqa, name).bias))
    x = torch.randn(B, T, D)
    torch.testing.assert_close(gqa(x, mask=causal_mask(T)), mha(x, mask=causal_mask(T)), atol=1e-5, rtol=0)


def test_masks_follow_the_convention():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    assert padding_mask(ids, 0).shape == (2, 1, 1, 3)
    assert padding_mask(ids, 0)[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]
    combined = combine_masks(causal_mask(3), padding_mask(ids, 0))
    assert combined.shape == (2, 1, 3, 3)
    assert combine_masks(None, None) is None


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_masked_weights_are_zero_and_rows_sum_to_one(n_kv_heads):
    mha = MultiHeadAttention(D, H, n_kv_heads).eval()
    ids = random_pad_ids(T)
    mask = combine_masks(causal_mask(T), padding_mask(ids, 0))
    _, weights = mha(torch.randn(B, T, D), mask=mask, need_weights=True)
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T))


def test_no_output_depends_on_a_masked_key():
    """Gradients: output row t must not depend on input positions the mask hides from it."""
    mha = MultiHeadAttention(D, H, 2).eval()
    x = torch.randn(B, T, D, requires_grad=True)
    ids = random_pad_ids(T)
    mask = combine_masks(causal_mask(T), padding_mask(ids, 0))
    for fast in (True, False):
        out = mha(x, mask=mask) if fast else mha(x, mask=mask, need_weights=True)[0]
        for t in range(T):
            (grad,) = torch.autograd.grad(out[:, t].sum(), x, retain_graph=True)
            for b in range(B):
                for s in range(T):
                    if s != t and not mask[b, 0, t, s]:
                        assert grad[b, s].abs().max() == 0, (fast, b, t, s)


def test_fast_and_explicit_paths_agree_in_gradients():
    mha = MultiHeadAttention(D, H, 2).eval()
    x = torch.randn(B, T, D, requires_grad=True)
    mask = causal_mask(T)
    (g_fast,) = torch.autograd.grad(mha(x, mask=mask).pow(2).sum(), x)
    (g_explicit,) = torch.autograd.grad(mha(x, mask=mask, need_weights=True)[0].pow(2).sum(), x)
    torch.testing.assert_close(g_fast, g_explicit, atol=1e-5, rtol=1e-4)


def test_bad_head_counts_are_refused():
    with pytest.raises(ValueError, match="n_kv_heads"):
        MultiHeadAttention(32, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="d_model"):
        MultiHeadAttention(30, 4)
