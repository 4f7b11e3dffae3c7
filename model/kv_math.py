"""KV-cache arithmetic: how many bytes a cache takes, and the shapes of well-known published models.

Legend: L layers, Hkv key/value heads, Dh head dim, T cached tokens, B batch.

    cache bytes = 2 (K and V) * L * Hkv * Dh * T * B * bytes per element

Only the key/value heads are cached, so a model with H query heads and Hkv < H
key/value heads (GQA; MQA when Hkv = 1) needs H / Hkv times less cache than the
same model with plain multi-head attention (Hkv = H). At long contexts the cache,
not the weights, is what fills the accelerator's memory: that is why large models use GQA.

Multi-head latent attention (MLA, model/mla.py) caches one latent of C numbers and one
rotary key of R numbers per token and layer, whatever the number of heads:

    MLA cache bytes = L * (C + R) * T * B * bytes per element
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import AttentionVariant, attention_variant

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def cache_bytes(n_layers: int, n_kv_heads: int, d_head: int, tokens: int, batch: int = 1, bytes_per_element: int = 4) -> int:
    """Bytes of the K and V tensors of every layer for `tokens` cached tokens of `batch` sequences."""
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("d_head", d_head),
                        ("bytes_per_element", bytes_per_element)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if tokens < 0 or batch < 0:
        raise ValueError(f"tokens and batch must be >= 0, got tokens={tokens}, batch={batch}.")
    return 2 * n_layers * n_kv_heads * d_head * tokens * batch * bytes_per_element


def latent_cache_bytes(n_layers: int, kv_latent_dim: int, rope_dim: int, tokens: int, batch: int = 1,
                       bytes_per_element: int = 4) -> int:
    """Bytes of MLA's cache: every layer's latent c_KV (C) and rotary key (R) for `tokens` tokens of `batch` sequences."""
    if n_layers < 1 or kv_latent_dim < 1 or rope_dim < 0 or bytes_per_element < 1:
        raise ValueError(f"need n_layers, kv_latent_dim, bytes_per_element >= 1 and rope_dim >= 0; got "
                         f"{n_layers}, {kv_latent_dim}, {bytes_per_element}, {rope_dim}.")
    if tokens < 0 or batch < 0:
        raise ValueError(f"tokens and batch must be >= 0, got tokens={tokens}, batch={batch}.")
    return n_layers * (kv_latent_dim + rope_dim) * tokens * batch * bytes_per_element


def bytes_per_token(n_layers: int, n_kv_heads: int, d_head: int, bytes_per_element: int = 4) -> int:
    """Cache bytes one more token adds (batch 1)."""
    return cache_bytes(n_layers, n_kv_heads, d_head, 1, 1, bytes_per_element)


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a published model that decide its KV-cache size."""

    name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    context: int  # the context length it was trained for
    source: str  # where the numbers come from
    kv_latent_dim: int = 0  # MLA: the cached latent per token and layer (0: not MLA)
    rope_dim: int = 0  # MLA: the cached rotary key per token and layer

    @property
    def kind(self) -> AttentionVariant:
        return "MLA" if self.kv_latent_dim else attention_variant(self.n_heads, self.n_kv_heads)

    def bytes_per_token(self, bytes_per_element: int) -> int:
        """Cache bytes one more token adds: K and V of the K/V heads, or MLA's latent and rotary key."""
        if self.kv_latent_dim:
            return latent_cache_bytes(self.n_layers, self.kv_latent_dim, self.rope_dim, 1, 1, bytes_per_element)
        return bytes_per_token(self.n_layers, self.n_kv_heads, self.d_head, bytes_per_element)

    def variants(self) -> tuple[KVVariant, ...]:
        """This model's MHA, GQA and MQA versions (see `kv_variants`)."""
        return kv_variants(self.n_heads, self.n_kv_heads)


@dataclass(frozen=True)
class KVVariant:
    """One way to share key/value heads among `n_heads` query heads."""

    variant: AttentionVariant
    n_kv_heads: int

    @property
    def label(self) -> str:
        return f"{self.variant} ({self.n_kv_heads} K/V head{'s' if self.n_kv_heads > 1 else ''})"


def kv_variants(n_heads: int, n_kv_heads: int | None = None) -> tuple[KVVariant, ...]:
    """The MHA, GQA and MQA versions of a shape with `n_heads` query heads, the one rule every page uses.

    GQA keeps the model's own K/V head count when it is grouped (1 < Hkv < H), else takes the largest
    divisor of H from 2 to max(2, H / 4); a head count with no such divisor (a prime H, H = 2) has no GQA
    version, and a single head is only MHA.
    """
    found = [KVVariant("MHA", n_heads)]
    if n_kv_heads is not None and 1 < n_kv_heads < n_heads and n_heads % n_kv_heads == 0:
        found.append(KVVariant("GQA", n_kv_heads))
    else:
        grouped = [d for d in range(2, max(2, n_heads // 4) + 1) if n_heads % d == 0 and d < n_heads]
        if grouped:
            found.append(KVVariant("GQA", grouped[-1]))
    if n_heads > 1:
        found.append(KVVariant("MQA", 1))
    return tuple(found)


# Shapes typed in from each model's published configuration (layers, heads, KV heads, head dim, context).
PRESETS: dict[str, ModelShape] = {
    # Radford et al. 2019; Hugging Face config "gpt2": n_layer 12, n_head 12, n_embd 768 (Dh 64), n_ctx 1024.
    "GPT-2 small (124M)": ModelShape("GPT-2 small (124M)", 12, 12, 12, 64, 1024,
                                     "GPT-2 paper (Radford et al., 2019); HF gpt2 config.json"),
    # Hugging Face config "gpt2-xl": n_layer 48, n_head 25, n_embd 1600 (Dh 64), n_ctx 1024.
    "GPT-2 XL (1.5B)": ModelShape("GPT-2 XL (1.5B)", 48, 25, 25, 64, 1024,
                                  "GPT-2 paper (Radford et al., 2019); HF gpt2-xl config.json"),
    # Touvron et al. 2023, Table 1; HF meta-llama/Llama-2-7b-hf: 32 layers, 32 heads, 32 KV heads, hidden 4096.
    "Llama-2-7B (MHA)": ModelShape("Llama-2-7B (MHA)", 32, 32, 32, 128, 4096,
                                   "Llama 2 paper (Touvron et al., 2023); HF Llama-2-7b-hf config.json"),
    # HF meta-llama/Llama-2-70b-hf: 80 layers, 64 heads, 8 KV heads (GQA), hidden 8192.
    "Llama-2-70B (GQA)": ModelShape("Llama-2-70B (GQA)", 80, 64, 8, 128, 4096,
                                    "Llama 2 paper (Touvron et al., 2023); HF Llama-2-70b-hf config.json"),
    # Jiang et al. 2023, Table 1: dim 4096, n_layers 32, n_heads 32, n_kv_heads 8, context_len 8192.
    # (Its sliding window of 4096 tokens caps the cache in practice; the formula here ignores that.)
    "Mistral-7B (GQA)": ModelShape("Mistral-7B (GQA)", 32, 32, 8, 128, 8192,
                                   "Mistral 7B paper (Jiang et al., 2023), Table 1"),
    # Almazrouei et al. 2023; HF tiiuae/falcon-7b: 32 layers, 71 heads, multi_query, hidden 4544 (Dh 64).
    "Falcon-7B (MQA)": ModelShape("Falcon-7B (MQA)", 32, 71, 1, 64, 2048,
                                  "Falcon paper (Almazrouei et al., 2023); HF falcon-7b config.json"),
    # DeepSeek-AI 2024, Section 3.1.2: 60 layers, n_h 128 heads of d_h 128, KV compression d_c 512, decoupled
    # rotary key d_h^R 64; 128K context. Every head has its own (up-projected) keys: 128 "K/V heads" uncached.
    "DeepSeek-V2 (MLA)": ModelShape("DeepSeek-V2 (MLA)", 60, 128, 128, 128, 131072,
                                    "DeepSeek-V2 paper (arXiv 2405.04434), Section 3.1.2; HF DeepSeek-V2 config.json",
                                    kv_latent_dim=512, rope_dim=64),
    # DeepSeek-AI 2024, Section 4.2: 61 layers, 128 heads of 128, d_c 512, d_h^R 64; 128K context.
    "DeepSeek-V3 (MLA)": ModelShape("DeepSeek-V3 (MLA)", 61, 128, 128, 128, 131072,
                                    "DeepSeek-V3 technical report (arXiv 2412.19437), Section 4.2; HF DeepSeek-V3 config.json",
                                    kv_latent_dim=512, rope_dim=64),
}


def attention_parameters(d_model: int, n_heads: int, n_kv_heads: int, bias: bool = True) -> int:
    """Weights (and biases) of one attention module: W_Q and W_O are D x H*Dh, W_K and W_V D x Hkv*Dh."""
    d_head = d_model // n_heads
    q_out, kv_out = n_heads * d_head, n_kv_heads * d_head
    weights = 2 * d_model * q_out + 2 * d_model * kv_out
    return weights + ((q_out + 2 * kv_out + d_model) if bias else 0)


def mla_attention_parameters(d_model: int, n_heads: int, kv_latent_dim: int, rope_dim: int, bias: bool = True) -> int:
    """Weights (and biases) of one MLA module: W_Q (D x H*(Dh+R)), W_DKV (D x C) and the latent's RMSNorm gain (C),
    W_UK and W_UV (C x H*Dh), W_KR (D x R), W_O (H*Dh x D); only W_Q and W_O have biases."""
    d_head = d_model // n_heads
    q_out, heads_out = n_heads * (d_head + rope_dim), n_heads * d_head
    weights = d_model * q_out + d_model * kv_latent_dim + kv_latent_dim + 2 * kv_latent_dim * heads_out + d_model * rope_dim
    weights += heads_out * d_model
    return weights + ((q_out + d_model) if bias else 0)


def format_bytes(n: float) -> str:
    """A byte count in the largest binary unit that keeps it >= 1 (e.g. "1.5 GiB")."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"
