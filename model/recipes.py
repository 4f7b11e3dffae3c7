"""The shipped settings for each task: the task, the model shape and how to train it.

`python -m model.train --task NAME` starts from these; the shipped checkpoints were
made with them (each checkpoint's meta["command"] has the exact command).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .config import GPTConfig, TransformerConfig
from .gpt import GPT
from .training import TrainConfig
from .transformer import Transformer


@dataclass(frozen=True)
class Recipe:
    """A task description, model settings (vocab and max_len come from the task), training settings."""

    task: dict[str, Any]
    model: dict[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)


RECIPES: dict[str, Recipe] = {
    "reversal": Recipe(
        task={"name": "reversal", "n": 8, "vocab": 10},
        model={"d_model": 128, "n_heads": 4, "n_layers": 2, "n_kv_heads": 4, "pos_encoding": "learned"},
        train=TrainConfig(steps=400, batch_size=64, lr=3e-3, warmup_steps=20, eval_every=100, eval_sequences=500),
    ),
    "dates": Recipe(
        task={"name": "dates"},
        model={
            "d_model": 128, "n_heads": 4, "n_layers": 2, "n_kv_heads": 4, "d_ff": 256,
            "norm_position": "pre", "activation": "gelu", "pos_encoding": "sinusoidal",
        },
        train=TrainConfig(steps=800, batch_size=128, lr=2e-3, warmup_steps=50, eval_every=200, eval_sequences=300),
    ),
    "shakespeare": Recipe(
        task={"name": "shakespeare", "seq_len": 128, "max_vocab": 12000},
        model={"d_model": 192, "n_heads": 4, "n_layers": 3, "n_kv_heads": 4, "pos_encoding": "learned"},
        train=TrainConfig(steps=2800, batch_size=16, lr=2.5e-3, warmup_steps=100, eval_every=700, eval_sequences=200),
    ),
}


def build_config(task, tokenizer, settings: dict[str, Any]) -> GPTConfig | TransformerConfig:
    """The model config for `task` with these settings (vocab from the tokenizer, max_len from the task)."""
    max_len = settings.get("max_len") or task.required_max_len
    settings = {k: v for k, v in settings.items() if k != "max_len"}
    vocab = tokenizer.vocab_size
    if task.model_kind == "gpt":
        return GPTConfig(vocab_size=vocab, max_len=max_len, **settings)
    return TransformerConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, max_len=max_len, **settings)


def model_from_config(config: GPTConfig | TransformerConfig, seed: int = 0) -> GPT | Transformer:
    """A freshly initialised model, seeded so the same settings give the same weights."""
    torch.manual_seed(seed)
    return GPT(config) if isinstance(config, GPTConfig) else Transformer(config)


def build_model(task, tokenizer, settings: dict[str, Any], seed: int = 0) -> GPT | Transformer:
    """build_config then model_from_config (check the run with training.check_run in between)."""
    return model_from_config(build_config(task, tokenizer, settings), seed)
