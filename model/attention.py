"""Scaled dot-product attention and the one MultiHeadAttention module (MHA, GQA and MQA).

Legend: B batch, T_q query length, T_k key length, D d_model, H query heads,
Hkv key/value heads, G = H // Hkv query heads per key/value head, Dh = D // H.

    MHA  (Hkv = H)        GQA (1 < Hkv < H)       MQA (Hkv = 1)
    q: 0 1 2 3            q: 0 1 | 2 3            q: 0 1 2 3
    k: 0 1 2 3            k:  0  |  1             k:    0
    Query head h reads key/value head h // G.

Grouped heads are computed by a reshape, (B, H, T, Dh) -> (B, Hkv, G, T, Dh),
never by copying K and V G times: the copy would throw away the memory saving
that GQA/MQA exist for.

Two paths, one module: the explicit path computes scores, mask, softmax and
weights step by step (what the tracing API and the pages show); the fast path
calls `F.scaled_dot_product_attention` when nobody asked for the weights.

A head mask (H,) scales each head's output before the heads are concatenated:
0 switches a head off, exactly as if its columns of W_O were zero (the bias stays).
A query whose every key is masked (a padding position at the start of a left-padded
row) attends to nothing: weights 0 and output 0 on both paths (SDPA returns 0 for
such a row; the explicit path zeroes it).

Two more parameters, same module:
  rope_base   rotary position embeddings (model/rope.py): q and k are rotated to their
              positions before the scores (self-attention only); the cache keeps rotated keys.
  kv_latent_dim, rope_dim
              multi-head latent attention (MLA, model/mla.py): K and V come up from a
              cached latent c_KV per token, plus a rotary key of rope_dim numbers shared by
              the heads. Heads then have keys of Dh + R numbers (scores scaled by
              1 / sqrt(Dh + R)) and values of Dh. Decoding from a cache takes the absorbed
              path (attention over the latents, never decompressed); `absorb` forces either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kv_cache import KVCache
from .mla import LatentKV
from .rope import apply_rope


@dataclass(frozen=True)
class AttentionSteps:
    """Every intermediate of one explicit attention computation."""

    raw_scores: Tensor  # (B, H, T_q, T_k)  q . k
    scaled_scores: Tensor  # (B, H, T_q, T_k)  q . k / sqrt(Dh)
    weights: Tensor  # (B, H, T_q, T_k)  softmax over keys; 0 where masked
    output: Tensor  # (B, H, T_q, Dh)  weights @ v


def _group(q: Tensor, n_kv_heads: int) -> Tensor:
    """(B, H, T, Dh) -> (B, Hkv, G, T, Dh): query heads gathered under their shared K/V head."""
    batch, n_heads, length, d_head = q.shape
    if n_heads % n_kv_heads:
        raise ValueError(f"{n_heads} query heads cannot be grouped over {n_kv_heads} key/value heads.")
    return q.view(batch, n_kv_heads, n_heads // n_kv_heads, length, d_head)


def attention_steps(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0) -> AttentionSteps:
    """softmax(q k^T / sqrt(Dh), masked) v, keeping every step.

    q (B, H, T_q, Dh); k, v (B, Hkv, T_k, Dh) with Hkv dividing H;
    mask broadcastable to (B, H, T_q, T_k), True where attention is allowed.
    """
    batch, n_heads, t_q, d_head = q.shape
    n_kv_heads, t_k = k.shape[1], k.shape[2]
    q_grouped = _group(q, n_kv_heads)  # (B, Hkv, G, T_q, Dh)
    raw = q_grouped @ k.unsqueeze(2).transpose(-2, -1)  # (B, Hkv, G, T_q, T_k)
    raw = raw.reshape(batch, n_heads, t_q, t_k)  # (B, H, T_q, T_k)
    scaled = raw / math.sqrt(d_head)  # keeps the softmax out of saturation as Dh grows
    if mask is not None:
        # masked_fill returns a new tensor: filling `scaled` in place would corrupt the
        # tensor autograd saved for the division above.
        scores = scaled.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        # A query with every key masked would be NaN (0/0); it attends to nothing instead.
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    else:
        weights = torch.softmax(scaled, dim=-1)  # (B, H, T_q, T_k)
    dropped = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    grouped_weights = dropped.view(batch, n_kv_heads, n_heads // n_kv_heads, t_q, t_k)
    output = grouped_weights @ v.unsqueeze(2)  # (B, Hkv, G, T_q, Dv); Dv = Dh except for MLA
    return AttentionSteps(raw, scaled, weights, output.reshape(batch, n_heads, t_q, v.shape[-1]))


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention: returns (output (B, H, T_q, Dh), weights (B, H, T_q, T_k))."""
    steps = attention_steps(q, k, v, mask)
    return steps.output, steps.weights


@dataclass(frozen=True)
class AttentionTrace:
    """What one MultiHeadAttention call computed, tensor by tensor, for display."""

    q: Tensor  # (B, H, T_q, Dh)
    k: Tensor  # (B, Hkv, T_k, Dh)  all keys attended to (cached ones included)
    v: Tensor  # (B, Hkv, T_k, Dh)
    raw_scores: Tensor  # (B, H, T_q, T_k)
    scaled_scores: Tensor  # (B, H, T_q, T_k)
    mask: Tensor | None  # broadcastable to (B, H, T_q, T_k); True = allowed
    weights: Tensor  # (B, H, T_q, T_k)
    head_outputs: Tensor  # (B, H, T_q, Dh)
    concatenated: Tensor  # (B, T_q, H * Dh)  heads side by side, before out_proj
    output: Tensor  # (B, T_q, D)
    # RoPE: q and the new tokens' k before rotation (q and k above are rotated). MLA: q and k
    # above are [content ; rotary] (Dh + R numbers), v the up-projected values.
    q_unrotated: Tensor | None = None  # (B, H, T_q, Dh or Dh + R)  RoPE only
    k_unrotated: Tensor | None = None  # (B, Hkv, T_new, Dh); MLA: the rotary key (B, 1, T_new, R)
    latent: Tensor | None = None  # (B, T_k, C)  MLA only: the cached c_KV of every key
    rotary_key: Tensor | None = None  # (B, T_k, R)  MLA only: the cached, rotated key shared by heads


class MultiHeadAttention(nn.Module):
    """Multi-head attention whose number of key/value heads makes it MHA, GQA or MQA.

    n_kv_heads == n_heads: multi-head; 1: multi-query; any divisor of n_heads: grouped-query.
    rope_base: rotate q and k (self-attention); kv_latent_dim: multi-head latent attention
    (then n_kv_heads == n_heads, and rope_dim numbers of rotary key per token).
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, dropout: float = 0.0, bias: bool = True,
                 rope_base: float | None = None, kv_latent_dim: int | None = None, rope_dim: int = 0):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError(
                f"need d_model % n_heads == 0 and n_heads % n_kv_heads == 0; "
                f"got d_model={d_model}, n_heads={n_heads}, n_kv_heads={n_kv_heads}."
            )
        if kv_latent_dim is not None and n_kv_heads != n_heads:
            raise ValueError(f"MLA gives every head its own keys from the latent: n_kv_heads must be n_heads ({n_heads}).")
        if rope_dim and (rope_base is None or kv_latent_dim is None):
            raise ValueError("a rotary key (rope_dim > 0) needs MLA (kv_latent_dim) and RoPE (rope_base).")
        if kv_latent_dim is not None and rope_base is not None and rope_dim < 2:
            raise ValueError("MLA with RoPE rotates a decoupled key: rope_dim must be at least 2.")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.d_head = d_model // n_heads
        self.dropout = dropout
        self.rope_base = rope_base
        self.rope_dim = rope_dim
        self.absorb: bool | None = None  # MLA: None = absorbed when decoding from a cache; True/False forces
        self.q_proj = nn.Linear(d_model, n_heads * (self.d_head + rope_dim), bias=bias)
        if kv_latent_dim is None:
            self.latent = None
            self.k_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
            self.v_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        else:
            self.latent = LatentKV(d_model, n_heads, self.d_head, kv_latent_dim, rope_dim)
        self.out_proj = nn.Linear(n_heads * self.d_head, d_model, bias=bias)

    def _check_head_mask(self, head_mask: Tensor) -> Tensor:
        if head_mask.shape != (self.n_heads,):
            raise ValueError(f"a layer's head mask must be shaped ({self.n_heads},), got {tuple(head_mask.shape)}.")
        return head_mask

    def _split_heads(self, x: Tensor, n_heads: int) -> Tensor:
        batch, length, width = x.shape
        # view splits the last dim into heads; transpose puts heads before time so each
        # head is a (T, Dh) matrix for the matmul. The result is not contiguous.
        return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)  # (B, heads, T, Dh)

    def _rotate(self, x: Tensor, positions: Tensor) -> Tensor:
        """RoPE on the last `rope_dim` numbers of each head for MLA (q_R), on all Dh otherwise."""
        if self.latent is None:
            return apply_rope(x, positions, self.rope_base)
        content, rotary = x[..., : self.d_head], x[..., self.d_head :]
        return torch.cat([content, apply_rope(rotary, positions, self.rope_base)], dim=-1)

    def _keys_values(self, x: Tensor, context: Tensor | None, cache: KVCache | None,
                     positions: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """K and V to attend over, projected from x (self) or context (cross), through the cache,
        and the new keys before rotation (RoPE only). MLA: ([c_KV ; k_R], empty, k_R before rotation) instead."""
        if context is not None and cache is not None and cache.length > 0:
            return cache.keys, cache.values, None  # cross-attention: the encoder's K/V never change
        source = x if context is None else context
        unrotated = None
        if self.latent is not None:
            # One cached row per token, [c_KV ; k_R] (B, 1, T_k, C + R); the second tensor is empty.
            k = self.latent.compress(source, positions, self.rope_base)
            v = k.new_empty(*k.shape[:3], 0)  # (B, 1, T_k, 0)
            if self.rope_dim:
                unrotated = self.latent.k_rope(source)[:, None]  # (B, 1, T_k, R)
        else:
            k = self._split_heads(self.k_proj(source), self.n_kv_heads)  # (B, Hkv, T_k, Dh)
            v = self._split_heads(self.v_proj(source), self.n_kv_heads)  # (B, Hkv, T_k, Dh)
            if positions is not None:
                unrotated, k = k, apply_rope(k, positions, self.rope_base)  # the cache keeps rotated keys
        if cache is not None:
            k, v = cache.append(k, v)  # (B, Hkv, T_cached + T_k, Dh)
        return k, v, unrotated

    def _fast_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float,
                        scale: float | None = None) -> Tensor:
        """`F.scaled_dot_product_attention`, with a shortcut for decoding one token with GQA/MQA."""
        batch, n_heads, t_q, d_q = q.shape
        n_kv_heads = k.shape[1]
        group = n_heads // n_kv_heads  # G
        if t_q == 1 and mask is None and group > 1:
            # One new token, no mask: the G query heads sharing a key/value head are G queries
            # against the same keys, so they go in as a length-G query of that one head. SDPA
            # then reads each cached K and V once per group instead of once per query head,
            # which is what makes MQA decoding faster when reading the cache dominates.
            grouped = q.reshape(batch, n_kv_heads, group, d_q)  # (B, Hkv, G, Dh)
            out = F.scaled_dot_product_attention(grouped, k, v, dropout_p=dropout_p, scale=scale)  # (B, Hkv, G, Dv)
            return out.reshape(batch, n_heads, 1, v.shape[-1])  # (B, H, 1, Dv)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, enable_gqa=group > 1, scale=scale
        )  # (B, H, T_q, Dv)

    def _absorbed(self, q: Tensor, cached: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
        """MLA without decompressing the cache: multi-query attention over [c_KV ; k_R] -> heads (B, H, T_q, Dh).

        The cached rows are the keys as they are, and the values too: the weighted sum of the k_R
        columns is computed and dropped, which costs R numbers per row but keeps the query, key and
        value widths equal, so SDPA takes its fused kernel and copies nothing."""
        query = self.latent.absorb_query(q)  # (B, H, T_q, C + R)
        scale = 1.0 / math.sqrt(q.shape[-1])  # the scale of the decompressed scores, Dh + R
        summed = self._fast_attention(query, cached, cached, mask, dropout_p, scale)  # (B, H, T_q, C + R)
        latent_heads, _ = self.latent.split(summed)  # (B, H, T_q, C)
        return self.latent.absorb_output(latent_heads)  # (B, H, T_q, Dh)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
        return_trace: bool = False,
        head_mask: Tensor | None = None,
        positions: Tensor | None = None,
    ):
        """x (B, T_q, D); context (B, T_k, D) for cross-attention; mask True = allowed;
        head_mask (H,): 1 keeps a head, 0 removes its output before W_O, values between scale it;
        positions (T_q,) or (B, T_q): the new tokens' positions for RoPE (default: after the cache).

        Returns the output (B, T_q, D); with need_weights, (output, weights (B, H, T_q, T_k));
        with return_trace, (output, AttentionTrace).
        """
        batch, t_q, _ = x.shape
        if self.rope_base is None or context is not None:
            positions = None  # no rotation: no RoPE, or cross-attention
        elif positions is None:
            start = cache.length if cache is not None else 0
            positions = torch.arange(start, start + t_q, device=x.device)  # (T_q,)
        q = self._split_heads(self.q_proj(x), self.n_heads)  # (B, H, T_q, Dh [+ R])
        q_unrotated, q = (q, self._rotate(q, positions)) if positions is not None else (None, q)
        k, v, k_unrotated = self._keys_values(x, context, cache, positions)  # MLA: rows [c_KV ; k_R], empty
        latent = rope_key = None
        dropout_p = self.dropout if self.training else 0.0
        explicit = need_weights or return_trace
        absorb = self.absorb if self.absorb is not None else cache is not None
        if self.latent is not None and absorb and not explicit:
            heads = self._absorbed(q, k, mask, dropout_p)  # (B, H, T_q, Dh)
        else:
            if self.latent is not None:
                latent, rope_key = self.latent.split(k)  # (B, 1, T_k, C), (B, 1, T_k, R)
                k, v = self.latent.up(latent, rope_key)  # (B, H, T_k, Dh + R), (B, H, T_k, Dh)
                latent, rope_key = latent[:, 0], rope_key[:, 0]  # (B, T_k, C), (B, T_k, R)
            if explicit:
                steps = attention_steps(q, k, v, mask, dropout_p)
                heads = steps.output
            else:
                heads = self._fast_attention(q, k, v, mask, dropout_p)  # (B, H, T_q, Dh)
        if head_mask is not None:
            heads = heads * self._check_head_mask(head_mask).to(heads.dtype)[None, :, None, None]  # (B, H, T_q, Dh)
        # transpose back to (B, T, H, Dh) leaves a non-contiguous tensor; reshape copies it
        # into one block so the heads sit side by side in each row.
        concatenated = heads.transpose(1, 2).reshape(batch, t_q, self.n_heads * self.d_head)  # (B, T_q, H*Dh)
        output = self.out_proj(concatenated)  # (B, T_q, D)
        if return_trace:
            trace = AttentionTrace(q, k, v, steps.raw_scores, steps.scaled_scores, mask, steps.weights, heads,
                                   concatenated, output, q_unrotated, k_unrotated, latent, rope_key)
            return output, trace
        if need_weights:
            return output, steps.weights
        return output
