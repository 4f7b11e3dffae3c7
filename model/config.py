"""Model configurations: frozen dataclasses that a checkpoint can rebuild a model from.

Choices are `Literal` strings (not enums) so a config round-trips through JSON unchanged.
Derived fields (`n_kv_heads`, `d_ff`) are filled in `__post_init__`, and every
impossible combination is refused there with a message that says what to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

NormKind = Literal["layernorm", "rmsnorm"]
NormPosition = Literal["pre", "post"]
Activation = Literal["gelu", "relu"]
PositionalEncoding = Literal["sinusoidal", "learned", "rope", "none"]
AttentionKind = Literal["standard", "mla"]  # standard: MHA/GQA/MQA by n_kv_heads; mla: latent K/V
AttentionVariant = Literal["MHA", "GQA", "MQA", "MLA"]

_CHOICES = {
    "norm": ("layernorm", "rmsnorm"),
    "norm_position": ("pre", "post"),
    "activation": ("gelu", "relu"),
    "pos_encoding": ("sinusoidal", "learned", "rope", "none"),
    "attention": ("standard", "mla"),
}


class ConfigError(ValueError):
    """A model or training setting that cannot work, with a message saying why."""


def check_heads(d_model: int, n_heads: int, n_kv_heads: int) -> None:
    """Refuse head counts that do not split d_model or do not group evenly."""
    if n_heads < 1 or n_kv_heads < 1:
        raise ConfigError(f"n_heads ({n_heads}) and n_kv_heads ({n_kv_heads}) must be at least 1.")
    if d_model % n_heads:
        raise ConfigError(
            f"d_model ({d_model}) must be divisible by n_heads ({n_heads}): "
            f"each head gets d_model / n_heads dimensions."
        )
    if n_heads % n_kv_heads:
        raise ConfigError(
            f"n_kv_heads ({n_kv_heads}) must divide n_heads ({n_heads}): "
            f"each key/value head is shared by an equal group of query heads."
        )


def kv_head_of(head: int, n_heads: int, n_kv_heads: int) -> int:
    """The key/value head query head `head` reads: heads are grouped in runs of H / Hkv (0 1 | 2 3 -> 0 | 1)."""
    if not 0 <= head < n_heads:
        raise ValueError(f"head {head} is not one of the {n_heads} query heads.")
    return head // (n_heads // n_kv_heads)


def attention_variant(n_heads: int, n_kv_heads: int) -> AttentionVariant:
    """"MHA" when every query head has its own K/V head, "MQA" when all share one, "GQA" between."""
    if n_kv_heads == n_heads:
        return "MHA"
    return "MQA" if n_kv_heads == 1 else "GQA"


@dataclass(frozen=True)
class _CommonConfig:
    """Fields shared by the decoder-only GPT and the encoder-decoder Transformer."""

    def _fill_and_check(self) -> None:
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        for name in ("max_len", "d_model", "n_layers", "d_ff"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        check_heads(self.d_model, self.n_heads, self.n_kv_heads)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}.")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        self._check_rope_and_mla()

    def _check_rope_and_mla(self) -> None:
        if self.pos_encoding == "rope":
            if self.d_head % 2:
                raise ConfigError(f"RoPE turns pairs of coordinates: d_head ({self.d_head}) must be even.")
            if not self.rope_base > 1.0:
                raise ConfigError(f"rope_base must be greater than 1, got {self.rope_base}.")
        if self.attention != "mla":
            if self.kv_latent_dim is not None or self.mla_rope_dim:
                raise ConfigError('kv_latent_dim and mla_rope_dim apply to attention="mla" only.')
            object.__setattr__(self, "mla_rope_dim", 0)
            return
        if self.n_kv_heads != self.n_heads:
            raise ConfigError(f"MLA up-projects keys and values for every head from the latent: leave n_kv_heads "
                              f"unset or equal to n_heads ({self.n_heads}), got {self.n_kv_heads}.")
        if self.kv_latent_dim is None:
            object.__setattr__(self, "kv_latent_dim", self.d_model // 2)
        if self.mla_rope_dim is None:
            object.__setattr__(self, "mla_rope_dim", self.d_head // 2 if self.pos_encoding == "rope" else 0)
        if self.kv_latent_dim < 1:
            raise ConfigError(f"kv_latent_dim must be a positive integer, got {self.kv_latent_dim}.")
        if self.pos_encoding == "rope" and (self.mla_rope_dim < 2 or self.mla_rope_dim % 2):
            raise ConfigError(f"MLA with RoPE rotates a decoupled key: mla_rope_dim must be even and >= 2, "
                              f"got {self.mla_rope_dim}.")
        if self.pos_encoding != "rope" and self.mla_rope_dim:
            raise ConfigError('mla_rope_dim is the rotary key of MLA with pos_encoding="rope"; without RoPE it must be 0.')

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (G = H / Hkv)."""
        return self.n_heads // self.n_kv_heads

    @property
    def attention_variant(self) -> AttentionVariant:
        return "MLA" if self.attention == "mla" else attention_variant(self.n_heads, self.n_kv_heads)

    def attention_arguments(self) -> dict[str, Any]:
        """The self-attention module's RoPE and MLA arguments (cross-attention takes neither)."""
        return {
            "rope_base": self.rope_base if self.pos_encoding == "rope" else None,
            "kv_latent_dim": self.kv_latent_dim if self.attention == "mla" else None,
            "rope_dim": self.mla_rope_dim,
        }

    def kv_head_of(self, head: int) -> int:
        """The key/value head that query head `head` reads."""
        return kv_head_of(head, self.n_heads, self.n_kv_heads)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Rebuild from `to_dict()` output; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class GPTConfig(_CommonConfig):
    """A decoder-only language model (GPT): masked self-attention blocks, no encoder."""

    vocab_size: int
    max_len: int
    d_model: int
    n_heads: int
    n_layers: int
    n_kv_heads: int | None = None  # None means n_heads (plain multi-head attention)
    d_ff: int | None = None  # None means 4 * d_model
    dropout: float = 0.0
    norm: NormKind = "layernorm"
    norm_position: NormPosition = "pre"
    activation: Activation = "gelu"
    pos_encoding: PositionalEncoding = "learned"
    scale_embeddings: bool = False  # the original paper multiplies embeddings by sqrt(d_model)
    tie_weights: bool = True  # output projection shares the token embedding matrix
    bias: bool = True
    causal: bool = True  # False removes the causal mask: only for showing what leakage looks like
    rope_base: float = 10000.0  # RoPE's base: pair i turns by base^(-2i/Dh) per position
    attention: AttentionKind = "standard"
    kv_latent_dim: int | None = None  # MLA: the latent c_KV's width per token; None means d_model // 2
    mla_rope_dim: int | None = None  # MLA: the rotary key's width; None means d_head // 2 with RoPE, else 0

    def __post_init__(self) -> None:
        if self.vocab_size < 1:
            raise ConfigError(f"vocab_size must be positive, got {self.vocab_size}.")
        self._fill_and_check()


@dataclass(frozen=True)
class TransformerConfig(_CommonConfig):
    """The encoder-decoder Transformer of 'Attention Is All You Need'."""

    src_vocab_size: int
    tgt_vocab_size: int
    max_len: int
    d_model: int
    n_heads: int
    n_layers: int
    n_kv_heads: int | None = None
    d_ff: int | None = None
    dropout: float = 0.0
    norm: NormKind = "layernorm"
    norm_position: NormPosition = "post"  # the paper's choice
    activation: Activation = "relu"  # the paper's choice
    pos_encoding: PositionalEncoding = "sinusoidal"
    scale_embeddings: bool = True
    tie_weights: bool = False  # ties the decoder's embedding to the output projection
    bias: bool = True
    rope_base: float = 10000.0  # RoPE on the encoder's and decoder's self-attention; cross-attention has none
    # MLA is offered for the GPT: class attributes, not fields, so they never reach a checkpoint.
    attention = "standard"
    kv_latent_dim = None
    mla_rope_dim = 0

    def __post_init__(self) -> None:
        if self.src_vocab_size < 1 or self.tgt_vocab_size < 1:
            raise ConfigError("src_vocab_size and tgt_vocab_size must be positive.")
        self._fill_and_check()
