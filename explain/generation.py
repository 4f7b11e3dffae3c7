"""What the KV-cache page shows about a generation in progress, from the model's GenerationSession.

Legend: T tokens in the cache, V vocab, L layers, Hkv key/value heads, Dh head dim.
The session (model/generation_trace.py) runs the steps; this turns its record into the labels,
byte counts and timings the page prints, so the page itself computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model import LoadedCheckpoint
from model.generation_trace import GenerationSession, GenerationStep
from model.kv_math import format_bytes

from .cache import CacheBreakdown, CacheCurve, variant_curves
from .labels import display_token, token_labels

BYTES_PER_ELEMENT = 4  # the session's cache is float32


@dataclass(frozen=True)
class GenerationView:
    """One moment of a generation: the steps so far, the tokens, the cache and the with/without-cache check."""

    steps: tuple[GenerationStep, ...]
    finished: bool
    vocabulary: tuple[str, ...]  # every token as displayed, indexed by id
    labels: tuple[str, ...]  # "position:token" of every token fed so far
    source_text: str | None  # encoder-decoder: the source sentence
    source_labels: tuple[str, ...]
    generated: tuple[str, ...]  # the generated tokens as displayed
    cache: CacheBreakdown  # the self-attention cache now
    cross_cache_bytes: int | None  # encoder-decoder: the encoder's K/V, cached once
    curves: tuple[CacheCurve, ...]  # the cache with MHA, GQA and MQA versions of this shape, step by step

    @property
    def cross_cache_text(self) -> str:
        return format_bytes(self.cross_cache_bytes or 0)

    @property
    def last(self) -> GenerationStep:
        return self.steps[-1]

    @property
    def prefill(self) -> GenerationStep:
        return self.steps[0]

    @property
    def prompt_labels(self) -> tuple[str, ...]:
        return self.labels[self.prefill.start : self.prefill.start + self.prefill.query_length]

    @property
    def step_indices(self) -> tuple[int, ...]:
        return tuple(s.index for s in self.steps)

    @property
    def measured_bytes(self) -> tuple[int, ...]:
        return tuple(s.cache_bytes for s in self.steps)

    @property
    def cache_lengths(self) -> tuple[int, ...]:
        return tuple(s.cache_length for s in self.steps)

    @property
    def cached_ms(self) -> tuple[float, ...]:
        return tuple(1e3 * s.cached_seconds for s in self.steps)

    @property
    def uncached_ms(self) -> tuple[float, ...]:
        return tuple(1e3 * s.uncached_seconds for s in self.steps)

    @property
    def same_token_everywhere(self) -> bool:
        """Recomputing without the cache picked the same next token at every step."""
        return all(s.same_token for s in self.steps)

    @property
    def largest_difference(self) -> float:
        """The largest |p_cached - p_uncached| over every step and token."""
        return max(s.uncached_max_diff for s in self.steps)


def generation_view(checkpoint: LoadedCheckpoint, session: GenerationSession) -> GenerationView:
    """The page's view of `session` (a session of `checkpoint`'s model) after its latest step."""
    tokenizer, config = checkpoint.tokenizer, checkpoint.config
    batch, n_kv_heads, tokens, d_head = session.cache_shape()  # (B, Hkv, T, Dh)
    cache = CacheBreakdown(config.n_layers, config.n_heads, n_kv_heads, d_head, tokens, batch, BYTES_PER_ELEMENT)
    if cache.total_bytes != session.steps[-1].cache_bytes:
        raise RuntimeError(f"the cache formula gives {cache.total_bytes} bytes but the cache holds "
                           f"{session.steps[-1].cache_bytes}: the page would print a wrong number.")
    seq2seq = checkpoint.architecture == "transformer"
    source = [tokenizer.id_to_token(i) for i in session.source_ids] if seq2seq else []
    steps = tuple(session.steps)
    return GenerationView(
        steps=steps,
        finished=session.finished,
        vocabulary=tuple(display_token(t) for t in tokenizer.tokens),
        labels=tuple(token_labels(tokenizer.id_to_token(i) for i in session.tokens[: session.fed])),
        source_text=tokenizer.decode(list(session.source_ids)) if seq2seq else None,
        source_labels=tuple(token_labels(source)),
        generated=tuple(display_token(tokenizer.id_to_token(i)) for i in session.generated),
        cache=cache,
        cross_cache_bytes=steps[-1].cross_cache_bytes if seq2seq else None,
        curves=variant_curves(config.n_layers, config.n_heads, n_kv_heads, d_head,
                              tuple(s.cache_length for s in steps)),
    )


def cache_tensors(session: GenerationSession, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """One layer's cached K and V, each (Hkv, T, Dh), as numpy copies."""
    return session.cache_keys(layer).numpy(), session.cache_values(layer).numpy()
