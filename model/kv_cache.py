"""The key/value cache that makes autoregressive decoding cost O(T) per token instead of O(T^2).

Legend: B batch, Hkv key/value heads, T cached tokens, Dh head dim.

Why a cache at all: when a GPT generates token t+1, the keys and values of tokens
0..t are exactly the ones it computed at the previous step (a causal model never
lets an old token see a new one), so we keep them instead of recomputing.

Why no mask is needed when decoding one token with a cache: the only query is
the newest token, and every key in the cache belongs to a token at or before it.
Nothing in the cache is "in the future", so the causal mask's row for that query
would be all True, and a mask of all True changes nothing.

Why a mask IS needed at prefill: the prompt's T tokens go through the model in
one pass, as T queries at once. Query i must not see keys i+1..T-1, which are in
the same pass, so the causal (lower-triangular) mask is required there exactly
as in training.

Only the K and V heads are cached: with grouped-query or multi-query attention
there are n_kv_heads < n_heads of them, which is the whole point of GQA/MQA: the
cache is n_heads / n_kv_heads times smaller.

Multi-head latent attention (model/mla.py) caches, per token, its latent c_KV and its
rotary key instead, side by side: the "keys" are rows [c_KV ; k_R] (B, 1, T, C + R) and the
"values" are empty (B, 1, T, 0), since the values come from c_KV too. So the two tensors may
differ in heads and width (not in B or T).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

GROWTH_CHUNK = 64  # tokens added to the capacity when it runs out, at least


class KVCache:
    """Keys and values of one attention layer, (B, Hkv, T, Dh) each, growing by `append`.
    (MLA: rows [c_KV ; k_R] (B, 1, T, C + R) and an empty second tensor; see the module docstring.)

    Storage is preallocated and grown in chunks (doubling, at least GROWTH_CHUNK
    tokens), so appending one token copies one token, not the whole cache.
    """

    def __init__(self, capacity: int = 0):
        self.initial_capacity = capacity
        self._keys: Tensor | None = None  # (B, Hkv, capacity, Dh)
        self._values: Tensor | None = None
        self.length = 0

    def __len__(self) -> int:
        return self.length

    @property
    def keys(self) -> Tensor | None:
        return None if self._keys is None else self._keys[:, :, : self.length]  # (B, Hkv, T, Dh)

    @property
    def values(self) -> Tensor | None:
        return None if self._values is None else self._values[:, :, : self.length]  # (B, Hkv, T, Dh)

    @property
    def capacity(self) -> int:
        return 0 if self._keys is None else self._keys.shape[2]

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached K and V of the `length` tokens (not the spare capacity)."""
        if self._keys is None:
            return 0
        return (self.keys.numel() + self.values.numel()) * self._keys.element_size()

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add new tokens' K and V, (B, Hkv, T_new, Dh); return all cached ones, (B, Hkv, T, Dh)."""
        if keys.dim() != 4 or values.dim() != 4 or keys.shape[0] != values.shape[0] or keys.shape[2] != values.shape[2]:
            raise ValueError(f"keys and values must both be (B, Hkv, T, Dh); got {keys.shape}, {values.shape}.")
        needed = self.length + keys.shape[2]
        if self._keys is not None and not (_fits(keys, self._keys) and _fits(values, self._values)):
            raise ValueError(f"new keys {tuple(keys.shape)} do not match the cache {tuple(self._keys.shape)}.")
        if needed > self.capacity:
            self._grow(keys, values, needed)
        self._keys[:, :, self.length : needed] = keys
        self._values[:, :, self.length : needed] = values
        self.length = needed
        return self.keys, self.values

    def _grow(self, keys: Tensor, values: Tensor, needed: int) -> None:
        capacity = max(needed, self.initial_capacity, 2 * self.capacity, self.capacity + GROWTH_CHUNK)
        new_keys = keys.new_empty(keys.shape[0], keys.shape[1], capacity, keys.shape[3])  # (B, Hkv, capacity, Dh)
        new_values = values.new_empty(values.shape[0], values.shape[1], capacity, values.shape[3])
        if self._keys is not None:
            new_keys[:, :, : self.length] = self.keys
            new_values[:, :, : self.length] = self.values
        self._keys, self._values = new_keys, new_values


def _fits(new: Tensor, stored: Tensor) -> bool:
    """Same batch, heads and width: only the time axis may differ."""
    return new.shape[:2] == stored.shape[:2] and new.shape[3] == stored.shape[3]


@dataclass
class ModelCache:
    """All the caches of one model: one self-attention cache per decoder layer, and for an
    encoder-decoder one cross-attention cache per layer (the encoder's K/V, filled once)."""

    self_attention: list[KVCache]
    cross_attention: list[KVCache] = field(default_factory=list)

    @classmethod
    def empty(cls, n_layers: int, capacity: int = 0, cross: bool = False) -> "ModelCache":
        return cls(
            self_attention=[KVCache(capacity) for _ in range(n_layers)],
            cross_attention=[KVCache() for _ in range(n_layers)] if cross else [],
        )

    @property
    def length(self) -> int:
        """Tokens already decoded (the position of the next token)."""
        return self.self_attention[0].length if self.self_attention else 0

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.self_attention) + sum(c.nbytes for c in self.cross_attention)

    @property
    def self_attention_nbytes(self) -> int:
        return sum(c.nbytes for c in self.self_attention)
