"""Token embeddings and positional encodings.

Legend: B batch, T length, D d_model, V vocab size, L max_len.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TokenEmbedding(nn.Module):
    """Look up a learned D-vector per token id, optionally times sqrt(D) as in the original paper.

    The paper scales so that embeddings (initialised small) are not drowned out by
    the positional encoding, whose entries are in [-1, 1].
    """

    def __init__(self, vocab_size: int, d_model: int, scale: bool = True):
        super().__init__()
        self.table = nn.Embedding(vocab_size, d_model)
        self.scale = math.sqrt(d_model) if scale else 1.0

    @property
    def weight(self) -> Tensor:
        return self.table.weight  # (V, D)

    def forward(self, ids: Tensor) -> Tensor:  # (B, T) -> (B, T, D)
        # The range is checked by the lookup itself, not by ids.min()/ids.max() up front: those
        # are two extra reductions per call and, on a GPU, a wait for the device every step.
        # The CPU lookup raises IndexError on a bad id (a GPU raises a device-side assert).
        try:
            vectors = self.table(ids)  # (B, T, D)
        except IndexError:
            vocab_size = self.table.num_embeddings
            raise ValueError(f"token ids must be in [0, {vocab_size}), got {ids.min()}..{ids.max()}.") from None
        return vectors if self.scale == 1.0 else vectors * self.scale


def sinusoidal_table(max_len: int, d_model: int) -> Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(same angle). Shape (L, D).

    Each pair of dimensions is a rotation at its own frequency, so PE[pos + k] is a
    fixed linear function of PE[pos]: the model can read relative offsets.
    """
    positions = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    even_dims = torch.arange(0, d_model, 2, dtype=torch.float32)  # (D/2,)
    inv_freq = torch.exp(-math.log(10000.0) * even_dims / d_model)  # 1 / 10000^(2i/D)
    angles = positions * inv_freq  # (L, D/2)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # odd D: one fewer cosine column
    return table  # (L, D)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sin/cos encodings, computed not learned; not saved in checkpoints."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, length: int, start: int = 0) -> Tensor:  # -> (T, D)
        check_positions(start, length, self.max_len)
        return self.table[start : start + length]

    def at(self, positions: Tensor) -> Tensor:
        """The encodings of explicit positions (B, T), one row each -> (B, T, D)."""
        check_position_ids(positions, self.max_len)
        return self.table[positions]  # (B, T, D)


class LearnedPositionalEmbedding(nn.Module):
    """One learned D-vector per position 0..max_len-1 (GPT-2 style)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.table = nn.Embedding(max_len, d_model)

    def forward(self, length: int, start: int = 0) -> Tensor:  # -> (T, D)
        check_positions(start, length, self.max_len)
        return self.table.weight[start : start + length]  # rows start..start+T-1: a lookup of consecutive ids

    def at(self, positions: Tensor) -> Tensor:
        """The embeddings of explicit positions (B, T), one row each -> (B, T, D)."""
        check_position_ids(positions, self.max_len)
        return self.table(positions)  # (B, T, D)


def check_positions(start: int, length: int, max_len: int) -> None:
    """Refuse positions past the model's context with a message a user can act on."""
    if start + length > max_len:
        raise ValueError(
            f"sequence of {start + length} tokens is longer than the model's context "
            f"(max_len={max_len}); shorten the input."
        )


def check_position_ids(positions: Tensor, max_len: int) -> None:
    """Refuse explicit positions past the model's context (padded rows count real tokens only)."""
    if positions.numel() and int(positions.max()) >= max_len:
        raise ValueError(
            f"a row has {int(positions.max()) + 1} real tokens, more than the model's context "
            f"(max_len={max_len}); shorten the input."
        )


def make_positional(kind: str, max_len: int, d_model: int) -> nn.Module | None:
    """The positional encoding added to the embeddings, or None for "none" and for "rope"
    (RoPE adds nothing here: it rotates q and k inside attention, model/rope.py)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(max_len, d_model)
    if kind == "learned":
        return LearnedPositionalEmbedding(max_len, d_model)
    return None
