"""Multi-head latent attention's keys and values (MLA; DeepSeek-V2, arXiv 2405.04434).

Legend: B batch, T_q query length, T_k key length, D d_model, H heads, Dh head dim,
C kv_latent_dim (the latent), R mla_rope_dim (the decoupled rotary key; 0 without RoPE).

    x (B, T, D) --kv_down, RMSNorm--> c_KV (B, T, C)   cached: C numbers per token
                 --k_rope--> k_R  (B, T, R)   cached: rotated, shared by all heads
    c_KV --k_up--> content keys (B, H, T, Dh)    per head, recomputed from the cache
    c_KV --v_up--> values       (B, H, T, Dh)
    key of head h = [content key of h ; k_R]; its query = [q_C of h ; rotated q_R of h]

The cache holds c_KV and k_R only, side by side in one row per token, [c_KV ; k_R]:
C + R numbers per token and layer, against 2 * Hkv * Dh for MHA/GQA/MQA. RoPE cannot go on the content keys (the rotation would
sit between the query and k_up and stop the absorption below), hence the separate
rotary key.

Absorbed decoding: q_C . (W_UK,h c) = (W_UK,h^T q_C) . c, so each head's query is
mapped into the latent space once and scored against c_KV directly; likewise the
weighted sum of values is W_UV,h (sum of weights * c). Attention then runs over the
cached latents as multi-query attention with one shared "head" [c_KV ; k_R], and the
cache is never decompressed. The up-projections have no bias, so the two paths are
the same function.

The latent is RMS-normalised before it is cached (DeepSeek-V2 does the same): two small
matrices in a row (W_UK after W_DKV) would otherwise start with keys and values ten times
smaller than MHA's and learn slowly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .norms import RMSNorm
from .rope import apply_rope


class LatentKV(nn.Module):
    """The down-projection to c_KV, the rotary key, and the per-head up-projections of one MLA layer."""

    def __init__(self, d_model: int, n_heads: int, d_head: int, kv_latent_dim: int, rope_dim: int):
        super().__init__()
        if kv_latent_dim < 1 or rope_dim < 0:
            raise ValueError(f"MLA needs kv_latent_dim >= 1 and mla_rope_dim >= 0, got {kv_latent_dim}, {rope_dim}.")
        self.n_heads, self.d_head, self.latent_dim, self.rope_dim = n_heads, d_head, kv_latent_dim, rope_dim
        self.kv_down = nn.Linear(d_model, kv_latent_dim, bias=False)  # W_DKV
        self.latent_norm = RMSNorm(kv_latent_dim)
        self.k_up = nn.Linear(kv_latent_dim, n_heads * d_head, bias=False)  # W_UK, all heads side by side
        self.v_up = nn.Linear(kv_latent_dim, n_heads * d_head, bias=False)  # W_UV
        self.k_rope = nn.Linear(d_model, rope_dim, bias=False) if rope_dim else None  # W_KR

    def compress(self, x: Tensor, positions: Tensor | None, rope_base: float | None) -> Tensor:
        """x (B, T, D) -> [c_KV ; rotated k_R] (B, 1, T, C + R): what the cache stores, one row per token."""
        latent = self.latent_norm(self.kv_down(x))[:, None]  # (B, 1, T, C)
        if self.k_rope is None:
            return latent
        rope_key = apply_rope(self.k_rope(x)[:, None], positions, rope_base)  # (B, 1, T, R)
        return torch.cat([latent, rope_key], dim=-1)  # (B, 1, T, C + R)

    def split(self, cached: Tensor) -> tuple[Tensor, Tensor]:
        """[c_KV ; k_R] (B, 1, T, C + R) -> views c_KV (B, 1, T, C) and k_R (B, 1, T, R)."""
        return cached[..., : self.latent_dim], cached[..., self.latent_dim :]

    def _per_head(self, weight: Tensor) -> Tensor:
        return weight.view(self.n_heads, self.d_head, self.latent_dim)  # (H, Dh, C)

    def up(self, latent: Tensor, rope_key: Tensor) -> tuple[Tensor, Tensor]:
        """Decompress: c_KV (B, 1, T_k, C), k_R (B, 1, T_k, R) -> keys (B, H, T_k, Dh + R), values (B, H, T_k, Dh)."""
        batch, _, t_k, _ = latent.shape
        content = self.k_up(latent[:, 0]).view(batch, t_k, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T_k, Dh)
        values = self.v_up(latent[:, 0]).view(batch, t_k, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T_k, Dh)
        shared = rope_key.expand(batch, self.n_heads, t_k, self.rope_dim)  # (B, H, T_k, R): one key for every head
        return torch.cat([content, shared], dim=-1), values  # (B, H, T_k, Dh + R), (B, H, T_k, Dh)

    def absorb_query(self, q: Tensor) -> Tensor:
        """[q_C ; q_R] (B, H, T_q, Dh + R) -> [W_UK,h^T q_C ; q_R] (B, H, T_q, C + R): a query in latent space."""
        content, rotary = q[..., : self.d_head], q[..., self.d_head :]
        in_latent = torch.einsum("bhtd,hdc->bhtc", content, self._per_head(self.k_up.weight))  # (B, H, T_q, C)
        return torch.cat([in_latent, rotary], dim=-1)  # (B, H, T_q, C + R)

    def absorb_output(self, latent_heads: Tensor) -> Tensor:
        """Weighted sums of c_KV per head (B, H, T_q, C) -> head outputs W_UV,h (sum) (B, H, T_q, Dh)."""
        return torch.einsum("bhtc,hdc->bhtd", latent_heads, self._per_head(self.v_up.weight))  # (B, H, T_q, Dh)
