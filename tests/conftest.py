"""Shared fixtures: seeded, CPU, tiny configurations."""

from __future__ import annotations

import pytest
import torch

from model import GPT, GPTConfig, Transformer, TransformerConfig


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_gpt(n_kv_heads: int = 4, **overrides) -> GPT:
    settings = dict(vocab_size=13, max_len=24, d_model=32, n_heads=4, n_layers=2, n_kv_heads=n_kv_heads)
    settings.update(overrides)
    return GPT(GPTConfig(**settings)).eval()


def tiny_transformer(n_kv_heads: int = 4, **overrides) -> Transformer:
    settings = dict(src_vocab_size=15, tgt_vocab_size=11, max_len=24, d_model=32, n_heads=4, n_layers=2, n_kv_heads=n_kv_heads)
    settings.update(overrides)
    return Transformer(TransformerConfig(**settings)).eval()
