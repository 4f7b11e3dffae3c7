"""Norms, embeddings and positional encodings against PyTorch and the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from model import LayerNorm, LearnedPositionalEmbedding, RMSNorm, SinusoidalPositionalEncoding, TokenEmbedding, sinusoidal_table
from model.config import ConfigError, GPTConfig


def _with_random_gains(norm: nn.Module, ref: nn.Module) -> None:
    with torch.no_grad():
        for ours_p, ref_p in zip(norm.parameters(), ref.parameters()):
            ours_p.normal_()
            ref_p.copy_(ours_p)


@pytest.mark.parametrize("written_out", [False, True], ids=["fused", "formula"])
@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_norms_match_torch_outputs_and_gradients(kind, written_out):
    """Both ways a norm runs (fused forward, written-out formula) equal PyTorch's module."""
    ours, ref = (LayerNorm(16), nn.LayerNorm(16)) if kind == "layernorm" else (RMSNorm(16, eps=1e-6), nn.RMSNorm(16, eps=1e-6))
    _with_random_gains(ours, ref)
    ours.written_out = written_out
    x = (torch.randn(4, 5, 16) * 3 + 1).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    (out_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
    for ours_p, ref_p in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(ours_p.grad, ref_p.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_norm_formula_is_what_forward_computes(kind):
    """The formula a learner reads and the fused kernel the model runs agree on the same module."""
    norm = LayerNorm(32) if kind == "layernorm" else RMSNorm(32)
    _with_random_gains(norm, LayerNorm(32) if kind == "layernorm" else RMSNorm(32))
    x = torch.randn(3, 7, 32) * 5 - 2
    torch.testing.assert_close(norm(x), norm.formula(x), atol=2e-6, rtol=0)


@pytest.mark.parametrize("pos,i", [(0, 0), (1, 0), (5, 3), (17, 7), (63, 15)])
def test_sinusoidal_matches_the_paper(pos, i):
    d_model = 32
    table = sinusoidal_table(64, d_model)
    angle = pos / 10000 ** (2 * i / d_model)
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_any_length_up_to_max_len_and_not_saved():
    pe = SinusoidalPositionalEncoding(50, 8)
    assert pe(10).shape == (10, 8)
    torch.testing.assert_close(pe(3, start=4), sinusoidal_table(50, 8)[4:7])
    assert "table" not in pe.state_dict()  # recomputed, never stored in a checkpoint
    with pytest.raises(ValueError, match="max_len=50"):
        pe(51)


def test_odd_d_model_sinusoid():
    assert sinusoidal_table(10, 7).shape == (10, 7)


def test_learned_positions_are_parameters():
    pe = LearnedPositionalEmbedding(20, 8)
    assert pe(5).shape == (5, 8) and pe(5).requires_grad
    with pytest.raises(ValueError):
        pe(3, start=18)


def test_token_embedding_scaling_is_switchable():
    scaled, plain = TokenEmbedding(10, 16, scale=True), TokenEmbedding(10, 16, scale=False)
    plain.load_state_dict(scaled.state_dict())
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(scaled(ids), plain(ids) * 4.0)
    with pytest.raises(ValueError, match="token ids"):
        plain(torch.tensor([[10]]))


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(d_model=30, n_heads=4), "divisible by n_heads"),
        (dict(n_heads=4, n_kv_heads=3), "must divide n_heads"),
        (dict(norm="batchnorm"), "norm must be one of"),
        (dict(dropout=1.5), "dropout"),
        (dict(max_len=0), "max_len"),
    ],
)
def test_absurd_configs_are_refused(settings, message):
    base = dict(vocab_size=10, max_len=16, d_model=32, n_heads=4, n_layers=1)
    base.update(settings)
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**base)


def test_config_round_trip_and_derived_fields():
    config = GPTConfig(vocab_size=10, max_len=16, d_model=32, n_heads=4, n_layers=1)
    assert config.n_kv_heads == 4 and config.d_ff == 128 and config.d_head == 8
    assert GPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown"):
        GPTConfig.from_dict({**config.to_dict(), "colour": "red"})
