"""Feed-forward network, encoder and decoder layers, with optional traces.

Legend: B batch, T target length, S source length, D d_model, F d_ff.

Each layer wraps its sublayers (attention, feed-forward) in a residual connection
with a norm, in one of two placements:
    pre-norm  (GPT-2 and most modern models): x = x + dropout(sublayer(norm(x)))
    post-norm (the original paper):           x = norm(x + dropout(sublayer(x)))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from .attention import AttentionTrace, MultiHeadAttention
from .config import GPTConfig, TransformerConfig
from .kv_cache import KVCache
from .norms import make_norm

ModelConfig = GPTConfig | TransformerConfig


@dataclass(frozen=True)
class FeedForwardTrace:
    hidden: Tensor  # (B, T, F)  before the activation
    activated: Tensor  # (B, T, F)  after it
    output: Tensor  # (B, T, D)


class FeedForward(nn.Module):
    """Position-wise MLP: the same two linear maps applied to every token on its own."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.w_in = nn.Linear(d_model, d_ff, bias=bias)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.activation = F.gelu if activation == "gelu" else F.relu
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, return_trace: bool = False):  # (B, T, D) -> (B, T, D)
        hidden = self.w_in(x)  # (B, T, F)
        activated = self.activation(hidden)
        output = self.w_out(self.dropout(activated))  # (B, T, D)
        if return_trace:
            return output, FeedForwardTrace(hidden, activated, output)
        return output


@dataclass(frozen=True)
class SublayerTrace:
    """One residual sublayer: its input, what the norm made of it, the sublayer's output, the sum."""

    residual_in: Tensor  # (B, T, D)
    normed: Tensor  # (B, T, D) the norm's output (pre-norm: the sublayer input; post-norm: the layer output)
    residual_out: Tensor  # (B, T, D)


class Residual(nn.Module):
    """A norm plus a residual connection around a sublayer, pre- or post-norm."""

    def __init__(self, d_model: int, norm: str, position: str, dropout: float):
        super().__init__()
        self.norm = make_norm(norm, d_model)
        self.pre_norm = position == "pre"
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, sublayer) -> tuple[Tensor, Tensor, object]:
        """Apply `sublayer(h) -> (out, detail)`; return (new x, norm output, detail)."""
        if self.pre_norm:
            normed = self.norm(x)
            out, detail = sublayer(normed)
            return x + self.dropout(out), normed, detail
        out, detail = sublayer(x)
        normed = self.norm(x + self.dropout(out))
        return normed, normed, detail


@dataclass(frozen=True)
class LayerTrace:
    """Everything one encoder or decoder layer computed."""

    self_attention: AttentionTrace
    attention_residual: SublayerTrace
    cross_attention: AttentionTrace | None
    cross_residual: SublayerTrace | None
    feed_forward: FeedForwardTrace
    feed_forward_residual: SublayerTrace


def _attend(attn: MultiHeadAttention, trace: bool, **kwargs):
    """Call attention and return (output, trace or None) whichever was asked."""
    if trace:
        return attn(return_trace=True, **kwargs)
    return attn(**kwargs), None


def _feed(ffn: FeedForward, trace: bool):
    def run(h: Tensor):
        return ffn(h, return_trace=True) if trace else (ffn(h), None)

    return run


class DecoderLayer(nn.Module):
    """Masked self-attention, then (encoder-decoder only) cross-attention, then feed-forward."""

    def __init__(self, config: ModelConfig, cross_attention: bool = False):
        super().__init__()
        c = config

        def mha(**rope_and_mla) -> MultiHeadAttention:
            return MultiHeadAttention(c.d_model, c.n_heads, c.n_kv_heads, c.dropout, c.bias, **rope_and_mla)

        self.self_attn = mha(**c.attention_arguments())  # cross-attention keys get no rotation
        self.self_residual = Residual(c.d_model, c.norm, c.norm_position, c.dropout)
        self.cross_attn = mha() if cross_attention else None
        self.cross_residual = Residual(c.d_model, c.norm, c.norm_position, c.dropout) if cross_attention else None
        self.ffn = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout, c.bias)
        self.ffn_residual = Residual(c.d_model, c.norm, c.norm_position, c.dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
        return_trace: bool = False,
        head_mask: Tensor | None = None,
        cross_head_mask: Tensor | None = None,
        positions: Tensor | None = None,
    ):
        """x (B, T, D); memory (B, S, D) the encoder output; masks True = allowed;
        head_mask, cross_head_mask (H,) scale the self- and cross-attention heads (0 = off);
        positions (T,) or (B, T): the tokens' positions, for RoPE in self-attention.

        Returns x (B, T, D), or (x, LayerTrace) with return_trace.
        """
        x_in = x
        x, normed, self_trace = self.self_residual(
            x, lambda h: _attend(self.self_attn, return_trace, x=h, mask=mask, cache=cache, head_mask=head_mask,
                                positions=positions)
        )
        self_sub = SublayerTrace(x_in, normed, x)
        cross_trace = cross_sub = None
        if self.cross_attn is not None:
            if memory is None:
                raise ValueError("a decoder layer with cross-attention needs the encoder output (memory).")
            x_mid = x
            x, normed, cross_trace = self.cross_residual(
                x,
                lambda h: _attend(
                    self.cross_attn, return_trace, x=h, context=memory, mask=memory_mask, cache=cross_cache,
                    head_mask=cross_head_mask,
                ),
            )
            cross_sub = SublayerTrace(x_mid, normed, x)
        x_mid = x
        x, normed, ffn_trace = self.ffn_residual(x, _feed(self.ffn, return_trace))
        if not return_trace:
            return x
        return x, LayerTrace(self_trace, self_sub, cross_trace, cross_sub, ffn_trace, SublayerTrace(x_mid, normed, x))


class EncoderLayer(DecoderLayer):
    """Bidirectional self-attention (only padding is masked), then feed-forward."""

    def __init__(self, config: ModelConfig):
        super().__init__(config, cross_attention=False)
