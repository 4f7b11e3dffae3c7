"""RoPE and MLA: the rotation's properties, the latent cache's exact size, absorbed = plain, and every
equivalence the other variants keep (cache, generation, padding, head mask, causality, checkpoints)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from model import GPTConfig, TransformerConfig, apply_rope, load_checkpoint, save_checkpoint, trace
from model.config import ConfigError
from tests.conftest import tiny_gpt, tiny_transformer
from tests.test_head_mask import zero_w_o_columns
from tests.test_models import embedding_gradients
from tests.test_padding import ROWS, pad_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KINDS = {
    "rope-mha": dict(pos_encoding="rope"),
    "rope-gqa": dict(pos_encoding="rope", n_kv_heads=2),
    "rope-mqa": dict(pos_encoding="rope", n_kv_heads=1),
    "mla-rope": dict(pos_encoding="rope", attention="mla", n_kv_heads=None, kv_latent_dim=12),
    "mla-learned": dict(pos_encoding="learned", attention="mla", n_kv_heads=None, kv_latent_dim=12),
}
MLA_KINDS = ["mla-rope", "mla-learned"]


def model_of(kind: str, **overrides):
    return tiny_gpt(**{**KINDS[kind], **overrides})


def set_absorb(model, absorb: bool | None) -> None:
    for layer in model.decoder.layers:
        layer.self_attn.absorb = absorb


# --- apply_rope --------------------------------------------------------------------------------


def test_rope_preserves_every_norm():
    x = torch.randn(2, 3, 11, 16)
    rotated = apply_rope(x, torch.arange(11))
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("base", [10000.0, 500.0])
def test_rope_scores_depend_only_on_the_distance(base):
    q, k = torch.randn(16), torch.randn(16)
    for distance in (0, 1, 5, 13):
        scores = [
            apply_rope(q[None], torch.tensor([m]), base) @ apply_rope(k[None], torch.tensor([m - distance]), base).T
            for m in range(distance, distance + 6)
        ]
        for score in scores[1:]:
            torch.testing.assert_close(score, scores[0], atol=1e-5, rtol=0)


def test_rope_pairs_the_two_halves_written_out():
    d_head, base, position, pair = 8, 10000.0, 3, 1
    x = torch.randn(d_head)
    rotated = apply_rope(x[None], torch.tensor([position]), base)[0]
    phi = position * base ** (-2 * pair / d_head)
    a, b = x[pair].item(), x[pair + d_head // 2].item()
    assert rotated[pair].item() == pytest.approx(a * math.cos(phi) - b * math.sin(phi), abs=1e-6)
    assert rotated[pair + d_head // 2].item() == pytest.approx(a * math.sin(phi) + b * math.cos(phi), abs=1e-6)
    assert torch.equal(apply_rope(x[None], torch.tensor([0]))[0], x)  # position 0 turns nothing


def test_rope_per_row_positions_and_bad_input():
    x = torch.randn(2, 3, 4, 8)
    rows = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 1]])
    rotated = apply_rope(x, rows)
    torch.testing.assert_close(rotated[1, :, 2:], apply_rope(x[1:, :, 2:], torch.tensor([0, 1]))[0])
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(4, 7), torch.arange(4))
    with pytest.raises(ValueError, match="integers"):
        apply_rope(torch.randn(4, 8), torch.arange(4.0))


# --- the models --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_causal_by_gradients(kind):
    model = model_of(kind)
    idx = torch.randint(0, 13, (2, 9))
    for t in range(9):
        model.zero_grad()
        grad = embedding_gradients(lambda: model(idx), model.decoder.embed, t)
        assert (grad[:, t + 1:] == 0).all(), f"position {t} depends on a later token"
        assert grad[:, : t + 1].abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("absorb", [None, False])
def test_cached_logits_equal_full_recompute(kind, absorb):
    model = model_of(kind)
    set_absorb(model, absorb)
    idx = torch.randint(0, 13, (2, 12))
    cache = model.new_cache()
    pieces = [model(idx[:, :5], cache=cache)] + [model(idx[:, t:t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), model(idx), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, 5)])
def test_cached_generation_equals_uncached(kind, temperature, top_k):
    model = model_of(kind)
    idx = torch.randint(0, 13, (2, 4))
    runs = [model.generate(idx, 12, temperature, top_k, use_cache=c, generator=torch.Generator().manual_seed(1))
            for c in (True, False)]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kind", MLA_KINDS)
def test_absorbed_path_equals_plain_path(kind):
    model = model_of(kind)
    idx = torch.randint(0, 13, (3, 10))
    outputs = {}
    for absorb in (True, False):
        set_absorb(model, absorb)
        cache = model.new_cache()
        prefill = model(idx[:, :4], cache=cache)
        steps = [model(idx[:, t:t + 1], cache=cache) for t in range(4, 10)]
        outputs[absorb] = (model(idx), torch.cat([prefill, *steps], dim=1))
    for plain, absorbed in zip(outputs[False], outputs[True]):
        torch.testing.assert_close(absorbed, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", MLA_KINDS)
@pytest.mark.parametrize("batch,tokens", [(1, 1), (3, 7)])
def test_mla_cache_holds_the_latent_and_rotary_key_only(kind, batch, tokens):
    model = model_of(kind)
    c = model.config
    cache = model.new_cache()
    model(torch.randint(0, 13, (batch, tokens)), cache=cache)
    assert cache.nbytes == c.n_layers * batch * tokens * (c.kv_latent_dim + c.mla_rope_dim) * 4
    assert cache.self_attention[0].keys.shape == (batch, 1, tokens, c.kv_latent_dim + c.mla_rope_dim)  # [c_KV ; k_R]
    assert cache.self_attention[0].values.numel() == 0


def test_the_cache_keeps_rotated_keys():
    model = model_of("rope-gqa")
    idx = torch.randint(0, 13, (2, 6))
    cache = model.new_cache()
    model(idx, cache=cache)
    record = trace(model, idx)
    for layer, layer_cache in zip(record.decoder.layers, cache.self_attention):
        attn = layer.self_attention
        torch.testing.assert_close(layer_cache.keys, attn.k, atol=1e-6, rtol=0)
        torch.testing.assert_close(attn.k, apply_rope(attn.k_unrotated, torch.arange(6)), atol=1e-6, rtol=0)
        torch.testing.assert_close(attn.q, apply_rope(attn.q_unrotated, torch.arange(6)), atol=1e-6, rtol=0)


def test_mla_trace_returns_latents_up_projected_keys_values_and_weights():
    model = model_of("mla-rope")
    c = model.config
    idx = torch.randint(0, 13, (2, 7))
    record = trace(model, idx)
    torch.testing.assert_close(record.logits, model(idx), atol=1e-5, rtol=0)
    attn = record.decoder.layers[0].self_attention
    module = model.decoder.layers[0].self_attn.latent
    assert attn.latent.shape == (2, 7, c.kv_latent_dim) and attn.rotary_key.shape == (2, 7, c.mla_rope_dim)
    assert attn.k.shape == (2, c.n_heads, 7, c.d_head + c.mla_rope_dim) and attn.v.shape == (2, c.n_heads, 7, c.d_head)
    content = module.k_up(attn.latent).view(2, 7, c.n_heads, c.d_head).transpose(1, 2)
    torch.testing.assert_close(attn.k[..., : c.d_head], content, atol=1e-6, rtol=0)
    for h in range(c.n_heads):  # one rotary key shared by all heads
        torch.testing.assert_close(attn.k[:, h, :, c.d_head:], attn.rotary_key, atol=0, rtol=0)
    torch.testing.assert_close(attn.rotary_key[:, None], apply_rope(attn.k_unrotated, torch.arange(7)), atol=1e-6, rtol=0)
    torch.testing.assert_close(attn.weights.sum(-1), torch.ones(2, c.n_heads, 7), atol=1e-6, rtol=0)
    torch.testing.assert_close(attn.scaled_scores, attn.raw_scores / math.sqrt(c.d_head + c.mla_rope_dim))


@pytest.mark.parametrize("kind", ["rope-gqa", "mla-rope"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_rows_equal_each_row_alone(kind, side):
    model = model_of(kind)
    ids, mask = pad_batch(ROWS, side)
    for logits in (model(ids, attention_mask=mask), model(ids, attention_mask=mask, return_trace=True)[0]):
        for b, row in enumerate(ROWS):
            torch.testing.assert_close(logits[b][mask[b]], model(torch.tensor([row]))[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["rope-mha", "mla-rope"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_a_left_padded_batch_like_each_row_alone(kind, use_cache):
    model = model_of(kind)
    ids, mask = pad_batch(ROWS, "left")
    out = model.generate(ids, 6, use_cache=use_cache, attention_mask=mask)
    for b, row in enumerate(ROWS):
        alone = model.generate(torch.tensor([row]), 6, use_cache=use_cache)
        assert out[b, -6:].tolist() == alone[0, -6:].tolist()


@pytest.mark.parametrize("kind", ["rope-mqa", "mla-rope"])
def test_head_mask_equals_zeroed_w_o(kind):
    model = model_of(kind)
    zeroed = copy.deepcopy(model)
    mask = torch.ones(2, 4)
    mask[0, 1] = mask[1, 3] = 0.0
    zero_w_o_columns(zeroed.decoder.layers[0].self_attn, [1])
    zero_w_o_columns(zeroed.decoder.layers[1].self_attn, [3])
    idx = torch.randint(0, 13, (2, 8))
    expected = zeroed(idx)
    torch.testing.assert_close(model(idx, head_mask=mask), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(model(idx, return_trace=True, head_mask=mask)[0], expected, atol=1e-6, rtol=0)
    cache = model.new_cache()
    pieces = [model(idx[:, :5], cache=cache, head_mask=mask)]
    pieces += [model(idx[:, t:t + 1], cache=cache, head_mask=mask) for t in range(5, 8)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), expected, atol=1e-6, rtol=0)


def test_encoder_decoder_rope_rotates_self_attention_only():
    model = tiny_transformer(2, pos_encoding="rope")
    layer = model.decoder.layers[0]
    assert layer.self_attn.rope_base == 10000.0 and layer.cross_attn.rope_base is None
    assert model.decoder.embed.position is None  # nothing added to the embeddings
    src = torch.randint(1, 15, (2, 6))
    assert torch.equal(model.generate(src, 1, 2, 10, use_cache=True), model.generate(src, 1, 2, 10, use_cache=False))
    record = trace(model, src=src, tgt=torch.randint(1, 11, (2, 5)))
    assert record.decoder.layers[0].cross_attention.q_unrotated is None
    assert record.encoder.layers[0].self_attention.q_unrotated is not None


# --- configs and checkpoints -------------------------------------------------------------------


def test_config_defaults_round_trip_and_refusals():
    mla = GPTConfig(vocab_size=13, max_len=24, d_model=32, n_heads=4, n_layers=2, pos_encoding="rope", attention="mla")
    assert (mla.kv_latent_dim, mla.mla_rope_dim, mla.attention_variant) == (16, 4, "MLA")
    assert GPTConfig.from_dict(mla.to_dict()) == mla
    plain = GPTConfig(vocab_size=13, max_len=24, d_model=32, n_heads=4, n_layers=2, attention="mla", kv_latent_dim=8)
    assert plain.mla_rope_dim == 0
    seq2seq = TransformerConfig(src_vocab_size=5, tgt_vocab_size=5, max_len=8, d_model=16, n_heads=2, n_layers=1,
                                pos_encoding="rope", rope_base=500.0)
    assert TransformerConfig.from_dict(seq2seq.to_dict()) == seq2seq
    old = {k: v for k, v in tiny_gpt().config.to_dict().items()
           if k not in ("rope_base", "attention", "kv_latent_dim", "mla_rope_dim")}
    assert GPTConfig.from_dict(old).attention == "standard"  # a checkpoint from before RoPE and MLA
    base = dict(vocab_size=13, max_len=24, d_model=32, n_heads=4, n_layers=2)
    for bad, message in [
        (dict(attention="mla", n_kv_heads=2), "n_kv_heads"),
        (dict(kv_latent_dim=8), "mla"),
        (dict(attention="mla", pos_encoding="rope", mla_rope_dim=3), "even"),
        (dict(attention="mla", mla_rope_dim=4), "without RoPE"),
        (dict(pos_encoding="rope", rope_base=1.0), "rope_base"),
        (dict(pos_encoding="rope", d_model=36, n_heads=4), "even"),
    ]:
        with pytest.raises(ConfigError, match=message):
            GPTConfig(**{**base, **bad})


@pytest.mark.parametrize("kind", ["rope-mha", "mla-rope"])
def test_checkpoint_round_trip(tmp_path, kind):
    model = model_of(kind, rope_base=777.0)
    loaded = load_checkpoint(save_checkpoint(tmp_path / kind, model))
    assert loaded.config == model.config
    idx = torch.randint(0, 13, (2, 9))
    torch.testing.assert_close(loaded.model(idx), model(idx), atol=0, rtol=0)
