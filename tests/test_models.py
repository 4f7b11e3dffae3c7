"""GPT and encoder-decoder: causality by gradients, cache equals recomputation, they can learn."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_gpt, tiny_transformer
from model import KVCache

ARCHITECTURES = list(itertools.product([4, 2, 1], ["layernorm", "rmsnorm"], ["pre", "post"], ["sinusoidal", "learned", "none"]))


def embedding_gradients(model_call, embed_module, position: int) -> torch.Tensor:
    """d(logits[:, position]) / d(embedding output): (B, T, D)."""
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["x"] = output

    handle = embed_module.register_forward_hook(keep)
    try:
        logits = model_call()
        logits[:, position].sum().backward()
    finally:
        handle.remove()
    return captured["x"].grad


@pytest.mark.parametrize("n_kv_heads,norm,position,pos_encoding", ARCHITECTURES)
def test_gpt_is_causal_by_gradients(n_kv_heads, norm, position, pos_encoding):
    model = tiny_gpt(n_kv_heads, norm=norm, norm_position=position, pos_encoding=pos_encoding)
    idx = torch.randint(0, 13, (2, 9))
    for t in range(9):
        model.zero_grad()
        grad = embedding_gradients(lambda: model(idx), model.decoder.embed, t)
        assert (grad[:, t + 1 :] == 0).all(), f"position {t} depends on a later token"
        assert grad[:, : t + 1].abs().sum() > 0


def test_removing_the_causal_mask_leaks_the_future():
    model = tiny_gpt(causal=False)
    grad = embedding_gradients(lambda: model(torch.randint(0, 13, (1, 6))), model.decoder.embed, 0)
    assert grad[:, 1:].abs().sum() > 0


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_decoder_is_causal_and_padding_gets_no_attention(n_kv_heads):
    model = tiny_transformer(n_kv_heads)
    src = torch.randint(1, 15, (2, 6))
    src[0, -2:] = 0
    tgt = torch.randint(1, 11, (2, 7))
    for t in range(7):
        model.zero_grad()
        grad = embedding_gradients(lambda: model(src, tgt, src_pad_id=0), model.decoder.embed, t)
        assert (grad[:, t + 1 :] == 0).all()
    model.zero_grad()
    src_grad = embedding_gradients(lambda: model(src, tgt, src_pad_id=0), model.encoder.embed, slice(None))
    assert (src_grad[0, -2:] == 0).all(), "a padding position influenced the output"
    assert src_grad[1].abs().sum() > 0


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_gpt_cached_logits_equal_full_recompute(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    idx = torch.randint(0, 13, (2, 12))
    full = model(idx)  # (B, T, V)
    cache = model.new_cache()
    pieces = [model(idx[:, :5], cache=cache)]  # prefill 5, with the causal mask
    for t in range(5, 12):
        pieces.append(model(idx[:, t : t + 1], cache=cache))  # one token, no mask
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, 5)])
def test_gpt_cached_generation_equals_uncached(n_kv_heads, temperature, top_k):
    model = tiny_gpt(n_kv_heads)
    idx = torch.randint(0, 13, (3, 4))
    runs = [
        model.generate(idx, 15, temperature, top_k, use_cache=use, generator=torch.Generator().manual_seed(1))
        for use in (True, False)
    ]
    assert runs[0].shape == (3, 19)
    assert torch.equal(runs[0], runs[1])


def test_generation_past_the_context_is_refused():
    with pytest.raises(ValueError, match="max_len"):
        tiny_gpt().generate(torch.zeros(1, 20, dtype=torch.long), 10)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_encoder_decoder_cached_equals_uncached(n_kv_heads):
    model = tiny_transformer(n_kv_heads)
    src = torch.randint(1, 15, (2, 6))
    src[1, -3:] = 0
    tgt = torch.randint(1, 11, (2, 8))
    full = model(src, tgt, src_pad_id=0)
    memory, src_mask = model.encode(src, 0)
    cache = model.new_cache()
    pieces = [model.decode(tgt[:, :3], memory, src_mask, cache=cache)]
    for t in range(3, 8):
        pieces.append(model.decode(tgt[:, t : t + 1], memory, src_mask, cache=cache))
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)
    cached = model.generate(src, 1, 2, 12, use_cache=True, src_pad_id=0)
    uncached = model.generate(src, 1, 2, 12, use_cache=False, src_pad_id=0)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_cache_bytes_follow_the_formula(n_kv_heads):
    model = tiny_gpt(n_kv_heads, n_layers=3)
    cache = model.new_cache()
    model(torch.randint(0, 13, (1, 10)), cache=cache)
    d_head, bytes_per_element = 32 // 4, 4
    assert cache.nbytes == 2 * 3 * n_kv_heads * d_head * 10 * bytes_per_element
    assert cache.self_attention[0].keys.shape == (1, n_kv_heads, 10, d_head)


def test_mqa_cache_is_n_heads_times_smaller():
    sizes = {}
    for n_kv_heads in (4, 1):
        model, cache = tiny_gpt(n_kv_heads), None
        cache = model.new_cache()
        model(torch.randint(0, 13, (1, 8)), cache=cache)
        sizes[n_kv_heads] = cache.nbytes
    assert sizes[4] == 4 * sizes[1]


def test_kv_cache_grows_in_chunks_not_per_token():
    cache = KVCache()
    k = torch.randn(1, 2, 1, 4)
    cache.append(k, k)
    first_capacity = cache.capacity
    for _ in range(10):
        cache.append(k, k)
    assert cache.length == 11 and cache.capacity == first_capacity >= 11
    assert cache.nbytes == 2 * 11 * 2 * 4 * 4


def test_tiny_gpt_overfits_a_fixed_batch():
    model = tiny_gpt().train()
    idx = torch.randint(0, 13, (4, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        logits = model(idx[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 13), idx[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05


def test_tiny_encoder_decoder_learns_to_copy():
    model = tiny_transformer(2, norm_position="pre", dropout=0.0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start, end = 1, 2
    for _ in range(400):
        content = torch.randint(3, 11, (32, 6))
        tgt_in = torch.cat([torch.full((32, 1), start), content], dim=1)
        tgt_out = torch.cat([content, torch.full((32, 1), end)], dim=1)
        loss = F.cross_entropy(model(content, tgt_in).reshape(-1, 11), tgt_out.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    content = torch.randint(3, 11, (64, 6))
    out = model.generate(content, start, end, 7)
    assert (out[:, 1:7] == content).float().mean() > 0.95
