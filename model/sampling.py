"""Choosing the next token from logits: greedy, temperature and top-k."""

from __future__ import annotations

import torch
from torch import Tensor


def next_token_probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None) -> Tensor:
    """(B, V) logits -> (B, V) probabilities after temperature and top-k (others set to 0)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive here; temperature 0 means greedy (argmax).")
    scaled = logits / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        kth_best = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (B, 1)
        scaled = scaled.masked_fill(scaled < kth_best, float("-inf"))
    return torch.softmax(scaled, dim=-1)


def sample_next(logits: Tensor, temperature: float = 0.0, top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """(B, V) logits of the last position -> (B, 1) chosen ids; temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = next_token_probabilities(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)
