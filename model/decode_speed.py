"""Measured decode speed with the KV cache: MHA vs GQA vs MQA models of the same size.

Legend: B batch, T context length (tokens already cached), H query heads, Hkv key/value heads.

Each decode step reads every cached key and value once. When that read dominates the
step (big models, long contexts, big batches: "memory-bound" decoding on a GPU), a
cache H / Hkv times smaller makes the step up to that much faster. When it does not
(tiny models on a CPU, where Python overhead and the weight matmuls dominate), the
three variants run at about the same speed. This module measures, it does not predict.

The models are freshly initialised: speed does not depend on what a model has learned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .config import GPTConfig, attention_variant
from .gpt import GPT

SPEED_VOCAB = 256
WARMUP_RUNS = 2


@dataclass(frozen=True)
class SpeedSetup:
    """What to measure: one model size, several n_kv_heads, several context lengths."""

    d_model: int = 256
    n_heads: int = 8
    n_layers: int = 2
    kv_heads: tuple[int, ...] = (8, 2, 1)
    contexts: tuple[int, ...] = (32, 128, 512)
    batch: int = 4
    new_tokens: int = 8  # decode steps timed per point
    repeats: int = 3  # sweeps over every point; the fastest run of each point counts

    def __post_init__(self) -> None:
        if any(self.n_heads % kv for kv in self.kv_heads):
            raise ValueError(f"every n_kv_heads in {self.kv_heads} must divide n_heads={self.n_heads}.")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}.")
        if not self.contexts or min(self.contexts) < 1:
            raise ValueError("contexts must be positive lengths.")

    @property
    def points(self) -> int:
        """How many (variant, context) points a measurement has."""
        return len(self.kv_heads) * len(self.contexts)


@dataclass(frozen=True)
class SpeedPoint:
    """Decode speed of one variant at one context length."""

    variant: str  # "MHA" | "GQA" | "MQA"
    n_kv_heads: int
    context: int  # tokens in the cache before the timed steps
    batch: int
    tokens_per_s: float  # generated tokens per second, all sequences of the batch together
    cache_bytes: int  # the cache after the timed steps


def _time_decode(model: GPT, prompt: torch.Tensor, new_tokens: int) -> tuple[float, int]:
    """(seconds for new_tokens cached decode steps after a prefill of prompt (B, T), cache bytes)."""
    cache = model.new_cache(capacity=prompt.shape[1] + new_tokens)
    logits = model(prompt, cache=cache)  # prefill, not timed
    next_id = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    begin = time.perf_counter()
    for _ in range(new_tokens):
        logits = model(next_id, cache=cache)  # (B, 1, V)
        next_id = logits[:, -1].argmax(-1, keepdim=True)
    return time.perf_counter() - begin, cache.nbytes


@dataclass(frozen=True)
class SpeedProgress:
    """Where a measurement is: `done` of `total` timings, and the best speed of every point so far."""

    done: int
    total: int
    points: tuple[SpeedPoint, ...]  # one per (variant, context) once the first sweep is through

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@torch.no_grad()
def measure_decode_speed(setup: SpeedSetup = SpeedSetup(), seed: int = 0) -> Iterator[SpeedProgress]:
    """Time every (n_kv_heads, context) `setup.repeats` times, yielding progress after each timing.

    The sweeps interleave the variants, so a burst of load from other programs (or PyTorch's
    slow first calls) hits all of them alike instead of whichever happened to run first;
    each point keeps its fastest run.
    """
    generator = torch.Generator().manual_seed(seed)
    max_len = max(setup.contexts) + setup.new_tokens
    models = {}
    for kv in setup.kv_heads:
        torch.manual_seed(seed)
        models[kv] = GPT(GPTConfig(vocab_size=SPEED_VOCAB, max_len=max_len, d_model=setup.d_model,
                                   n_heads=setup.n_heads, n_layers=setup.n_layers, n_kv_heads=kv)).eval()
    prompts = {c: torch.randint(0, SPEED_VOCAB, (setup.batch, c), generator=generator) for c in setup.contexts}
    for model in models.values():  # the first calls of a shape are slow
        for _ in range(WARMUP_RUNS):
            _time_decode(model, prompts[min(setup.contexts)], 2)
    best: dict[tuple[int, int], SpeedPoint] = {}
    total, done = max(1, setup.repeats) * setup.points, 0
    for _ in range(max(1, setup.repeats)):
        for context in setup.contexts:
            for kv, model in models.items():
                seconds, nbytes = _time_decode(model, prompts[context], setup.new_tokens)
                speed = setup.new_tokens * setup.batch / max(seconds, 1e-9)
                if (kv, context) not in best or speed > best[kv, context].tokens_per_s:
                    best[kv, context] = SpeedPoint(attention_variant(setup.n_heads, kv), kv, context, setup.batch,
                                                   speed, nbytes)
                done += 1
                ordered = tuple(best[k, c] for k in setup.kv_heads for c in setup.contexts if (k, c) in best)
                yield SpeedProgress(done, total, ordered)
