"""Rotary position embeddings (RoPE; Su et al., RoFormer, arXiv 2104.09864).

Legend: B batch, H heads, T length, Dh head dim (even), P = Dh / 2 pairs.

RoPE adds nothing to the token embeddings. Inside attention it turns each query and
key by an angle proportional to its position, pair of coordinates by pair:

    pair i of a vector at position m turns by  m * theta_i,   theta_i = base^(-2i / Dh)

A rotation keeps every vector's length, and q rotated by m dotted with k rotated by n
is q dotted with k rotated by n - m: the score depends on the distance m - n only.

Pairing convention: the two HALVES (GPT-NeoX, Llama): pair i is coordinates
(i, i + Dh/2), not the interleaved (2i, 2i + 1) of RoFormer. Written out for one pair,
with a = x[i], b = x[i + Dh/2] and angle phi = m * theta_i:

    x'[i]        = a cos(phi) - b sin(phi)
    x'[i + Dh/2] = a sin(phi) + b cos(phi)
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_BASE = 10000.0


def rope_frequencies(d_head: int, base: float = DEFAULT_BASE) -> Tensor:
    """theta_i = base^(-2i / Dh) for the Dh / 2 pairs, fastest first -> (P,)."""
    if d_head < 2 or d_head % 2:
        raise ValueError(f"RoPE turns pairs of coordinates: the head dim must be even and >= 2, got {d_head}.")
    if base <= 1.0:
        raise ValueError(f"rope_base must be greater than 1, got {base}.")
    exponents = torch.arange(0, d_head, 2, dtype=torch.float64) / d_head  # 2i / Dh
    return (base ** -exponents).to(torch.float32)  # (P,)


def rope_angles(positions: Tensor, d_head: int, base: float = DEFAULT_BASE) -> Tensor:
    """The angle each pair turns by at each position: positions (...,) -> (..., P)."""
    if positions.dtype.is_floating_point or positions.dtype == torch.bool:
        raise ValueError(f"RoPE positions must be integers, got {positions.dtype}.")
    frequencies = rope_frequencies(d_head, base).to(positions.device)  # (P,)
    return positions.to(torch.float32)[..., None] * frequencies  # (..., P)


def apply_rope(x: Tensor, positions: Tensor, base: float = DEFAULT_BASE) -> Tensor:
    """Rotate x (..., T, Dh) to its positions: (T,) shared by every row, or (B, T) per row
    for x (B, H, T, Dh) (a padded batch counts each row's real tokens). Same shape as x.
    """
    d_head, length = x.shape[-1], x.shape[-2]
    if positions.shape[-1] != length or positions.dim() > 2:
        raise ValueError(f"positions {tuple(positions.shape)} must be (T,) or (B, T) with T = {length}.")
    angles = rope_angles(positions, d_head, base)  # (T, P) or (B, T, P)
    if positions.dim() == 2:
        if x.dim() != 4 or x.shape[0] != positions.shape[0]:
            raise ValueError(f"per-row positions {tuple(positions.shape)} need x shaped (B, H, T, Dh), got {tuple(x.shape)}.")
        angles = angles[:, None]  # (B, 1, T, P): the same positions for every head
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    first, second = x[..., : d_head // 2], x[..., d_head // 2 :]  # (..., T, P) each
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)  # (..., T, Dh)
