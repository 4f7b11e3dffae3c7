"""KV-cache numbers the pages show: a model's own cache broken down, its MHA/GQA/MQA versions, the calculator.

Legend: L layers, B batch, Hkv key/value heads, T cached tokens, Dh head dim, b bytes per number.

    cache bytes = 2 (K and V) · L · Hkv · Dh · T · B · b
    MLA:          L · (C + R) · T · B · b     (C the latent c_KV, R the rotary key, per token and layer)

Every byte count a page prints comes from a record here, and each record's `formula` is written
from the same numbers it multiplied, so the text next to a number cannot disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.config import AttentionVariant, GPTConfig, TransformerConfig, attention_variant
from model.kv_math import (
    DTYPE_BYTES,
    PRESETS,
    ModelShape,
    attention_parameters,
    bytes_per_token,
    cache_bytes,
    format_bytes,
    kv_variants,
    latent_cache_bytes,
    mla_attention_parameters,
)


@dataclass(frozen=True)
class CacheBreakdown:
    """The self-attention K/V cache of one model after `tokens` tokens, as the formula computes it."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    tokens: int
    batch: int
    bytes_per_element: int
    kv_latent_dim: int = 0  # MLA: the cached latent c_KV per token and layer (0: K and V are cached)
    rope_dim: int = 0  # MLA: the cached rotary key per token and layer

    @property
    def per_layer_k_bytes(self) -> int:
        """Bytes of one layer's K tensor (B, Hkv, T, Dh); V is the same size. (MLA: half a layer's latent rows.)"""
        if self.kv_latent_dim:
            return self.total_bytes // (2 * self.n_layers)
        return self.n_kv_heads * self.d_head * self.tokens * self.batch * self.bytes_per_element

    @property
    def total_bytes(self) -> int:
        if self.kv_latent_dim:
            return latent_cache_bytes(self.n_layers, self.kv_latent_dim, self.rope_dim, self.tokens, self.batch,
                                      self.bytes_per_element)
        return cache_bytes(self.n_layers, self.n_kv_heads, self.d_head, self.tokens, self.batch,
                           self.bytes_per_element)

    @property
    def variant(self) -> AttentionVariant:
        return "MLA" if self.kv_latent_dim else attention_variant(self.n_heads, self.n_kv_heads)

    @property
    def formula(self) -> str:
        """The product written out with this cache's numbers, ending in its total."""
        total = f"{self.total_bytes:,} bytes ({format_bytes(self.total_bytes)})"
        if self.kv_latent_dim:
            return (f"{self.n_layers} × ({self.kv_latent_dim} + {self.rope_dim}) × {self.tokens} × {self.batch} × "
                    f"{self.bytes_per_element} bytes = {total}")
        return (f"2 × {self.n_layers} × {self.n_kv_heads} × {self.d_head} × {self.tokens} × {self.batch} × "
                f"{self.bytes_per_element} bytes = {total}")


@dataclass(frozen=True)
class CacheCurve:
    """Cache bytes step by step for one way of sharing K/V heads (MHA, GQA or MQA)."""

    label: str
    n_kv_heads: int
    bytes_by_step: tuple[int, ...]


def variant_curves(n_layers: int, n_heads: int, n_kv_heads: int, d_head: int,
                   lengths: tuple[int, ...]) -> tuple[CacheCurve, ...]:
    """What the cache would take after each step (T = `lengths`) with each K/V sharing of this shape."""
    return tuple(CacheCurve(v.label, v.n_kv_heads, tuple(cache_bytes(n_layers, v.n_kv_heads, d_head, t) for t in lengths))
                 for v in kv_variants(n_heads, n_kv_heads))


def latent_curve(n_layers: int, n_heads: int, kv_latent_dim: int, rope_dim: int, lengths: tuple[int, ...]) -> CacheCurve:
    """MLA's cache bytes step by step (float32, batch 1), the line beside the MHA/GQA/MQA curves."""
    return CacheCurve(f"MLA (latent {kv_latent_dim} + rotary {rope_dim})", n_heads,
                      tuple(latent_cache_bytes(n_layers, kv_latent_dim, rope_dim, t) for t in lengths))


@dataclass(frozen=True)
class CalculatorResult:
    """One row of the cache calculator: a variant's cache at the chosen context and batch, and per token."""

    label: str
    n_kv_heads: int
    total_bytes: int
    per_token_bytes: int

    @property
    def total_text(self) -> str:
        return format_bytes(self.total_bytes)

    @property
    def per_token_text(self) -> str:
        return f"{format_bytes(self.per_token_bytes)} per token"


def calculate(n_layers: int, n_heads: int, n_kv_heads: int, d_head: int, context: int, batch: int,
              dtype: str, latent: tuple[int, int] | None = None) -> tuple[CalculatorResult, ...]:
    """The calculator's MHA, GQA and MQA caches for a shape (kv_variants decides the GQA head count), and
    with `latent` = (C, R) the MLA cache of the same shape (latent C plus rotary key R per token and layer)."""
    size = DTYPE_BYTES[dtype]
    rows = [CalculatorResult(v.label, v.n_kv_heads, cache_bytes(n_layers, v.n_kv_heads, d_head, context, batch, size),
                             cache_bytes(n_layers, v.n_kv_heads, d_head, 1, 1, size))
            for v in kv_variants(n_heads, n_kv_heads)]
    if latent is not None:
        c, r = latent
        rows.append(CalculatorResult(f"MLA (latent {c} + rotary {r})", n_heads,
                                     latent_cache_bytes(n_layers, c, r, context, batch, size),
                                     latent_cache_bytes(n_layers, c, r, 1, 1, size)))
    return tuple(rows)


@dataclass(frozen=True)
class PresetRow:
    """A published model's shape and its cache in float16."""

    model: str = field(metadata={"column": "model"})
    kind: str = field(metadata={"column": "kind"})
    layers: int = field(metadata={"column": "layers"})
    heads: int = field(metadata={"column": "heads"})
    kv_heads: int = field(metadata={"column": "kv heads"})
    d_head: int = field(metadata={"column": "d_head"})
    context: int = field(metadata={"column": "context"})
    kib_per_token: float = field(metadata={"column": "KiB per token (fp16)"})
    gib_full_context: float = field(metadata={"column": "GiB at full context (fp16, batch 1)"})


def preset_rows() -> tuple[PresetRow, ...]:
    """One row per published preset: its shape, bytes per token (float16) and the cache at its full context."""
    rows = []
    for shape in PRESETS.values():
        per_token = shape.bytes_per_token(DTYPE_BYTES["float16"])
        rows.append(PresetRow(shape.name, shape.kind, shape.n_layers, shape.n_heads, shape.n_kv_heads, shape.d_head,
                              shape.context, per_token / 1024, per_token * shape.context / 1024**3))
    return tuple(rows)


def preset(name: str) -> ModelShape | None:
    return PRESETS.get(name)


@dataclass(frozen=True)
class AttentionSummary:
    """One column of the MHA/GQA/MQA comparison table: a model's heads, shapes, parameters and cache."""

    model: str = field(metadata={"column": "model"})
    attention: str = field(metadata={"column": "attention"})
    n_heads: int = field(metadata={"column": "H (query heads)"})
    n_kv_heads: int = field(metadata={"column": "H_kv (K/V heads)"})
    d_head: int = field(metadata={"column": "d_head"})
    w_q: str = field(metadata={"column": "W_Q (d_model × H·d_head)"})
    w_kv: str = field(metadata={"column": "W_K, W_V (d_model × H_kv·d_head)"})
    attention_parameters: int = field(metadata={"column": "attention parameters per layer"})
    parameters: int = field(metadata={"column": "parameters (whole model)"})
    cache_per_token: str = field(metadata={"column": "KV cache per token"})


def attention_summary(name: str, config: GPTConfig | TransformerConfig, n_parameters: int,
                      bytes_per_element: int = 4) -> AttentionSummary:
    """The comparison row of model `name` (MLA: W_K, W_V are the up-projections from the latent)."""
    d_head, kv = config.d_head, config.n_kv_heads
    if config.attention_variant == "MLA":
        c, r = config.kv_latent_dim, config.mla_rope_dim
        return AttentionSummary(
            name, "MLA", config.n_heads, kv, d_head, f"{config.d_model} × {config.n_heads * (d_head + r)}",
            f"{config.d_model} × {c} (latent), then {c} × {kv * d_head}",
            mla_attention_parameters(config.d_model, config.n_heads, c, r, config.bias), n_parameters,
            format_bytes(latent_cache_bytes(config.n_layers, c, r, 1, 1, bytes_per_element)))
    return AttentionSummary(
        name, config.attention_variant, config.n_heads, kv, d_head, f"{config.d_model} × {config.n_heads * d_head}",
        f"{config.d_model} × {kv * d_head}", attention_parameters(config.d_model, config.n_heads, kv, config.bias),
        n_parameters, format_bytes(bytes_per_token(config.n_layers, kv, d_head, bytes_per_element)))
