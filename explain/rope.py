"""RoPE as the pages show it: one pair of q/k coordinates turning with position, and the score of a
fixed q and k against their distance, measured with the model's own `apply_rope`.

Legend: T tokens of the input, L positions shown (the model's max_len), Dh the rotated width
(d_head; MLA: mla_rope_dim), P = Dh / 2 pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model import GPTConfig, TransformerConfig, apply_rope
from model.attention import AttentionTrace
from model.generation_trace import GenerationSession
from model.rope import rope_frequencies


@dataclass(frozen=True)
class ScoreCurve:
    """q at position start + d against k at position start, for every distance d shown."""

    start: int
    distances: tuple[int, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class RopeView:
    """The rotation of one head's q and k in one layer, and their scores by distance."""

    layer: int
    head: int
    base: float
    rotated_width: int  # Dh, or MLA's rotary key width R
    mla: bool
    query_token: str  # whose q is turned (its vector before rotation, from the trace)
    key_token: str
    pair: int
    frequencies: tuple[float, ...]  # theta_i = base^(-2i/Dh), radians per position, pair by pair
    positions: tuple[int, ...]
    q_pair: np.ndarray  # (L, 2) the pair's two coordinates of q rotated to each position
    k_pair: np.ndarray  # (L, 2)
    curves: tuple[ScoreCurve, ...]  # the same q and k from two starting positions

    @property
    def frequency(self) -> float:
        return self.frequencies[self.pair]

    @property
    def turns_per_position(self) -> str:
        return f"{self.frequency:.4f} rad ({np.degrees(self.frequency):.2f}°) per position"

    @property
    def max_curve_difference(self) -> float:
        """The largest gap between the curves: 0 up to float rounding when the score depends on distance only."""
        first = np.array(self.curves[0].scores)
        return max(float(np.abs(np.array(c.scores) - first[: len(c.scores)]).max()) for c in self.curves)


def rope_pairs(config: GPTConfig | TransformerConfig) -> int:
    """How many coordinate pairs RoPE turns per head: d_head / 2, or MLA's mla_rope_dim / 2."""
    return (config.mla_rope_dim if config.attention_variant == "MLA" else config.d_head) // 2


def rotated_parts(att: AttentionTrace, head: int, kv_head: int, query: int, key: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of one q and one k that RoPE turns, before rotation -> (Dh,), (Dh,) (MLA: the R rotary numbers)."""
    if att.q_unrotated is None or att.k_unrotated is None:
        raise ValueError("this attention has no rotary position embedding (the model does not use RoPE).")
    width = att.k_unrotated.shape[-1]
    q = att.q_unrotated[0, head, query, -width:]  # (Dh,): MLA's q ends with its rotary part
    k = att.k_unrotated[0, kv_head if att.k_unrotated.shape[1] > 1 else 0, key]  # (Dh,)
    return q.float(), k.float()


def rope_view(config: GPTConfig | TransformerConfig, att: AttentionTrace, labels: list[str], layer: int, head: int,
              pair: int = 0, query: int | None = None, key: int = 0) -> RopeView:
    """How `head` of `layer` turns the q of token `query` (default: the last) and the k of token `key`."""
    query = len(labels) - 1 if query is None else query
    kv_head = config.kv_head_of(head)
    q, k = rotated_parts(att, head, kv_head, query, key)
    width = q.shape[0]
    if not 0 <= pair < width // 2:
        raise ValueError(f"pair {pair} is outside 0..{width // 2 - 1}.")
    base = config.rope_base
    positions = torch.arange(config.max_len)
    q_turned = apply_rope(q.expand(config.max_len, width), positions, base)  # (L, Dh): q at each position
    k_turned = apply_rope(k.expand(config.max_len, width), positions, base)  # (L, Dh)
    half = width // 2
    curves = []
    for start in (0, config.max_len // 2):
        distances = tuple(range(config.max_len - start))
        scores = tuple(float(q_turned[start + d] @ k_turned[start]) for d in distances)
        curves.append(ScoreCurve(start, distances, scores))
    return RopeView(layer, head, base, width, config.attention_variant == "MLA", labels[query], labels[key], pair,
                    tuple(rope_frequencies(width, base).tolist()), tuple(positions.tolist()),
                    torch.stack([q_turned[:, pair], q_turned[:, pair + half]], dim=1).numpy(),
                    torch.stack([k_turned[:, pair], k_turned[:, pair + half]], dim=1).numpy(), tuple(curves))


@dataclass(frozen=True)
class RotationRows:
    """q and k of one head before and after RoPE, token by token (the attention-steps page)."""

    q_before: np.ndarray  # (T_q, Dh)
    q_after: np.ndarray  # (T_q, Dh)
    k_before: np.ndarray  # (T_k, Dh)
    k_after: np.ndarray  # (T_k, Dh)
    width: int  # Dh, or MLA's rotary width R


def rotation_rows(att: AttentionTrace, head: int, kv_head: int) -> RotationRows | None:
    """The rotated part of q and k before and after RoPE; None when the attention has no RoPE."""
    if att.q_unrotated is None or att.k_unrotated is None:
        return None
    width = att.k_unrotated.shape[-1]
    k_row = kv_head if att.k_unrotated.shape[1] > 1 else 0
    k_after = att.rotary_key[0] if att.rotary_key is not None else att.k[0, k_row]  # (T_k, Dh)
    return RotationRows(att.q_unrotated[0, head, :, -width:].numpy(), att.q[0, head, :, -width:].numpy(),
                        att.k_unrotated[0, k_row].numpy(), k_after[:, -width:].numpy(), width)


@dataclass(frozen=True)
class LatentRows:
    """MLA in one layer: the cached latent c_KV, one head's up-projected K and V, and the shared rotary key."""

    latent: np.ndarray  # (T_k, C)
    keys: np.ndarray  # (T_k, Dh) the head's content keys, W_UK c_KV
    values: np.ndarray  # (T_k, Dh) W_UV c_KV
    rotary_key: np.ndarray  # (T_k, R), rotated; (T_k, 0) without RoPE
    n_heads: int
    d_head: int

    @property
    def latent_width(self) -> int:
        return self.latent.shape[1]

    @property
    def rotary_width(self) -> int:
        return self.rotary_key.shape[1]

    @property
    def cached_per_token(self) -> int:
        """Numbers the cache keeps per token in this layer: C + R."""
        return self.latent_width + self.rotary_width

    @property
    def mha_per_token(self) -> int:
        """What multi-head attention with the same heads would cache per token and layer: K and V of every head."""
        return 2 * self.n_heads * self.d_head

    @property
    def summary(self) -> str:
        return (f"The cache keeps c_KV ({self.latent_width} numbers) + the rotary key ({self.rotary_width}) = "
                f"{self.cached_per_token} numbers per token in this layer; multi-head attention with the same "
                f"{self.n_heads} heads would keep K and V of every head, 2 × {self.n_heads} × {self.d_head} = "
                f"{self.mha_per_token}.")


def latent_rows(att: AttentionTrace, head: int) -> LatentRows | None:
    """The MLA intermediates of one traced attention; None when the attention is not MLA."""
    if att.latent is None:
        return None
    n_heads, d_head = att.v.shape[1], att.v.shape[-1]
    return LatentRows(att.latent[0].numpy(), att.k[0, head, :, :d_head].numpy(), att.v[0, head].numpy(),
                      att.rotary_key[0].numpy(), n_heads, d_head)


@dataclass(frozen=True)
class LatentCacheRows:
    """What an MLA layer's cache holds now: c_KV and the rotary key of every token so far (batch row 0)."""

    layer: int
    latent: np.ndarray  # (T, C)
    rotary_key: np.ndarray  # (T, R)

    @property
    def title(self) -> str:
        return (f"Layer {self.layer} cache: {self.latent.shape[0]} tokens × (c_KV {self.latent.shape[1]} + rotary key "
                f"{self.rotary_key.shape[1]}), no per-head keys or values")


def latent_cache_rows(session: GenerationSession, layer: int, kv_latent_dim: int) -> LatentCacheRows:
    """An MLA layer's cached rows [c_KV ; k_R] (the KV page's session), split into the latent and the rotary key."""
    rows = session.cache_keys(layer)[0]  # (T, C + R): the one sequence's rows
    return LatentCacheRows(layer, rows[:, :kv_latent_dim].numpy(), rows[:, kv_latent_dim:].numpy())
