"""Choosing the next token from logits: greedy, temperature, top-k, top-p, and tokens never generated.

Legend: B batch, V vocab.

The order, for every row of (B, V) logits:

    1. suppress   the ids in suppress_ids get probability exactly 0 (the rest renormalised):
                  special tokens such as <unk>, <pad> or <s> that a reader should never see written
    2. temperature  logits / temperature (0 means greedy: the argmax of what is left after 1)
    3. top-k      keep the k most likely tokens
    4. top-p      of those, keep the smallest set of most likely tokens whose probabilities
                  add up to at least p (nucleus sampling); always at least the most likely one

    probabilities 0.5 0.2 0.15 0.1 0.05, top-p 0.6 -> keep 0.5 and 0.2 (0.7 >= 0.6), renormalised
                  to 0.5/0.7 = 0.714 and 0.2/0.7 = 0.286; the other three are never drawn

The default is to suppress nothing: the model library generates what the model predicts. The
callers that write text for students (the Shakespeare task's run(), the sidebar's continuation,
the KV-cache page) pass `never_generated(tokenizer)`: the unknown-word token and the pad and start
tokens. The end token is not among them, since an encoder-decoder must be able to stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

TOP_P_TOLERANCE = 1e-6  # a cumulative sum this close below p counts as reaching it (float32 rounding)


def never_generated(tokenizer) -> tuple[int, ...]:
    """The special ids a text for a reader should never contain: unk, pad and bos (eos may end a text)."""
    ids = (getattr(tokenizer, name, None) for name in ("unk_id", "pad_id", "bos_id"))
    return tuple(sorted({int(i) for i in ids if i is not None}))


def _check_suppressed(suppress_ids: Sequence[int], vocab_size: int) -> list[int]:
    ids = sorted({int(i) for i in suppress_ids})
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"suppress_ids {bad} are outside the vocabulary (size {vocab_size}).")
    if len(ids) >= vocab_size:
        raise ValueError("suppress_ids would remove every token of the vocabulary: nothing would be left to generate.")
    return ids


def suppress(logits: Tensor, suppress_ids: Sequence[int] = ()) -> Tensor:
    """(B, V) logits with the suppressed ids set to -inf: after a softmax they are exactly 0."""
    ids = _check_suppressed(suppress_ids, logits.shape[-1])
    if not ids:
        return logits
    return logits.index_fill(-1, torch.tensor(ids, device=logits.device), float("-inf"))  # (B, V)


def top_p_keep(probs: Tensor, top_p: float) -> Tensor:
    """(B, V) probabilities -> (B, V) True for the smallest set of most likely ids reaching top_p."""
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)  # (B, V) each
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # (B, V) probability of the more likely ids
    keep_sorted = before < top_p - TOP_P_TOLERANCE
    keep_sorted[..., 0] = True  # at least the most likely id
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # (B, V)


def keep_mask(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, *,
              top_p: float | None = None, suppress_ids: Sequence[int] = ()) -> Tensor:
    """(B, V) logits -> (B, V) True for the ids that may be drawn; greedy (temperature 0) keeps the argmax only."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    scaled = suppress(logits, suppress_ids)  # (B, V)
    if temperature == 0:
        return torch.zeros_like(scaled, dtype=torch.bool).scatter(-1, scaled.argmax(-1, keepdim=True), True)
    scaled = scaled / temperature
    keep = scaled > float("-inf")  # (B, V)
    if top_k is not None and top_k < scaled.shape[-1]:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        kth_best = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (B, 1)
        keep &= scaled >= kth_best  # ties with the k-th are kept too
    if top_p is not None and top_p != 1:
        probs = torch.softmax(scaled.masked_fill(~keep, float("-inf")), dim=-1)  # (B, V) after top-k
        keep &= top_p_keep(probs, top_p)
    return keep


def next_token_probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, *,
                             top_p: float | None = None, suppress_ids: Sequence[int] = ()) -> Tensor:
    """(B, V) logits -> (B, V) probabilities after suppression, temperature, top-k and top-p (cut ids are 0)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive here; temperature 0 means greedy (argmax).")
    keep = keep_mask(logits, temperature, top_k, top_p=top_p, suppress_ids=suppress_ids)  # (B, V)
    return torch.softmax((logits / temperature).masked_fill(~keep, float("-inf")), dim=-1)  # (B, V)


def sample_next(logits: Tensor, temperature: float = 0.0, top_k: int | None = None,
                generator: torch.Generator | None = None, *, top_p: float | None = None,
                suppress_ids: Sequence[int] = ()) -> Tensor:
    """(B, V) logits of the last position -> (B, 1) chosen ids; temperature 0 is greedy (never a suppressed id)."""
    if temperature == 0:
        return suppress(logits, suppress_ids).argmax(dim=-1, keepdim=True)  # (B, 1)
    probs = next_token_probabilities(logits, temperature, top_k, top_p=top_p, suppress_ids=suppress_ids)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


@dataclass(frozen=True)
class SamplingSettings:
    """How a text was (or will be) generated: greedy at temperature 0, else sampled with these cuts."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    suppress_ids: tuple[int, ...] = ()
    seed: int | None = None  # the generator's seed when sampled (the text is then reproducible)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suppress_ids", tuple(sorted({int(i) for i in self.suppress_ids})))
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}.")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1 (or None for all tokens), got {self.top_k}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (or None), got {self.top_p}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def effective(self) -> SamplingSettings:
        """The settings that change the choice: greedy ignores top-k, top-p and the seed."""
        return SamplingSettings(suppress_ids=self.suppress_ids) if self.greedy else self

    def with_suppressed(self, ids: Iterable[int]) -> SamplingSettings:
        """The same settings suppressing `ids` (e.g. `never_generated(tokenizer)`)."""
        return SamplingSettings(self.temperature, self.top_k, self.top_p, tuple(ids), self.seed)

    def describe(self, vocabulary: Sequence[str] | None = None) -> str:
        """In words: "sampled at temperature 0.8, top-k 20, seed 0; never generated: <unk>" (or "greedy...")."""
        if self.greedy:
            text = "greedy: always the most likely token"
        else:
            cuts = [f"top-k {self.top_k}"] if self.top_k is not None else []
            cuts += [f"top-p {self.top_p:g}"] if self.top_p is not None and self.top_p < 1 else []
            seed = [f"seed {self.seed}"] if self.seed is not None else []
            text = ", ".join([f"sampled at temperature {self.temperature:g}"] + cuts + seed)
        if self.suppress_ids:
            names = [vocabulary[i] for i in self.suppress_ids] if vocabulary is not None else None
            listed = ", ".join(names) if names else f"{len(self.suppress_ids)} special token(s)"
            text += f"; never generated: {listed}"
        return text
