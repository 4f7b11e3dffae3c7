"""Attention masks. One convention everywhere: a boolean tensor, True where attention is ALLOWED.

This is the convention of `F.scaled_dot_product_attention`. Masks broadcast to
(B, H, T_q, T_k): a causal mask is (T_q, T_k), a padding mask is (B, 1, 1, T_k),
and combining masks is a logical AND.

Legend: B batch, H heads, T_q query length, T_k key length.
"""

from __future__ import annotations

import torch
from torch import Tensor


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> Tensor:
    """Lower-triangular mask: query i may see key j only when j <= i.

    With t_k > t_q (a chunk of new queries after t_k - t_q cached keys) the
    queries are the *last* t_q positions, so query i sits at position
    i + (t_k - t_q) and sees every key up to there.
    """
    t_k = t_q if t_k is None else t_k
    if t_k < t_q:
        raise ValueError(f"causal_mask needs t_k >= t_q, got t_q={t_q}, t_k={t_k}.")
    offset = t_k - t_q
    q_pos = torch.arange(t_q, device=device).unsqueeze(1) + offset  # (T_q, 1)
    k_pos = torch.arange(t_k, device=device).unsqueeze(0)  # (1, T_k)
    return k_pos <= q_pos  # (T_q, T_k)


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """Mask out padding keys: (B, T_k) token ids -> (B, 1, 1, T_k), False at pad positions."""
    if ids.dim() != 2:
        raise ValueError(f"padding_mask expects ids shaped (B, T), got {tuple(ids.shape)}.")
    return (ids != pad_id)[:, None, None, :]  # (B, 1, 1, T_k)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """AND together the masks that are present; None when there are none."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    combined = present[0]
    for mask in present[1:]:
        combined = combined & mask  # broadcasts to the common shape
    return combined


def key_padding_mask(attention_mask: Tensor) -> Tensor:
    """A (B, T_k) mask, True for real tokens, as keys: (B, 1, 1, T_k), False at padding."""
    if attention_mask.dim() != 2 or attention_mask.dtype != torch.bool:
        raise ValueError(
            f"attention_mask must be a bool tensor shaped (B, T), True for real tokens; "
            f"got {attention_mask.dtype} {tuple(attention_mask.shape)}."
        )
    return attention_mask[:, None, None, :]  # (B, 1, 1, T_k)


def position_ids(attention_mask: Tensor, length: int) -> Tensor:
    """Positions of the last `length` tokens of each row, counting real tokens only -> (B, length).

    Row [pad pad a b c] gets positions [0 0 0 1 2]: a padding position gets 0 (it is never
    attended to, so any valid position would do).
    """
    counted = attention_mask.long().cumsum(dim=1) - 1  # (B, T_k): the position of each real token
    return counted[:, -length:].clamp(min=0)  # (B, T)
