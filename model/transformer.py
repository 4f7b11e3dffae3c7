"""The encoder-decoder Transformer of 'Attention Is All You Need'.

Legend: B batch, S source length, T target length, D d_model, V target vocab.

Three kinds of attention live here:
  encoder self-attention:  queries, keys, values from the source; only padding masked
  decoder self-attention:  from the target; causal mask (and target padding)
  cross-attention:         queries from the target, keys and values from the encoder
                           output; source padding masked
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import TransformerConfig
from .gpt import LayerStack, self_attention_mask
from .kv_cache import ModelCache
from .layers import DecoderLayer, EncoderLayer
from .masks import combine_masks, key_padding_mask, padding_mask
from .sampling import suppress
from .stack import StackTrace, count_parameters, init_gpt2


class Encoder(LayerStack):
    """Source embedding and encoder layers: every source token sees every other (but padding)."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config, config.src_vocab_size, lambda: EncoderLayer(config))


class Decoder(LayerStack):
    """Target embedding and decoder layers (masked self-attention, cross-attention, feed-forward)."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config, config.tgt_vocab_size, lambda: DecoderLayer(config, cross_attention=True))


@dataclass(frozen=True)
class Seq2SeqTrace:
    """Everything one encoder-decoder forward pass computed."""

    encoder: StackTrace
    decoder: StackTrace
    source_mask: Tensor | None  # (B, 1, 1, S) True = real token
    logits: Tensor  # (B, T, V)


HEAD_MASK_KINDS = ("encoder", "decoder", "cross")


def split_head_mask(head_mask: dict[str, Tensor] | None) -> dict[str, Tensor | None]:
    """An encoder-decoder head mask with every kind present (None = all heads on); refuses unknown keys."""
    head_mask = head_mask or {}
    unknown = set(head_mask) - set(HEAD_MASK_KINDS)
    if unknown:
        raise ValueError(f"head_mask keys must be among {HEAD_MASK_KINDS}, got {sorted(unknown)}.")
    return {kind: head_mask.get(kind) for kind in HEAD_MASK_KINDS}


class Transformer(nn.Module):
    """Encoder-decoder: encode the source once, then decode the target attending to it."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.lm_head = nn.Linear(config.d_model, config.tgt_vocab_size, bias=False)
        init_gpt2(self, config.n_layers)
        if config.tie_weights:
            self.lm_head.weight = self.decoder.embed.token.weight

    @property
    def num_parameters(self) -> int:
        return count_parameters(self)

    def new_cache(self, capacity: int = 0) -> ModelCache:
        """Empty caches: decoder self-attention per layer, plus cross-attention K/V per layer."""
        return ModelCache.empty(self.config.n_layers, capacity, cross=True)

    def encode(self, src: Tensor, src_pad_id: int | None = None, return_trace: bool = False,
               head_mask: Tensor | None = None, src_key_mask: Tensor | None = None):
        """src (B, S) -> (memory (B, S, D), source mask (B, 1, 1, S) or None[, StackTrace]).

        head_mask (n_layers, H) scales the encoder's self-attention heads (0 = off); src_key_mask (B, S)
        bool hides the source tokens where it is False from every query (encoder and cross-attention).
        """
        src_mask = padding_mask(src, src_pad_id) if src_pad_id is not None else None
        if src_key_mask is not None:
            if src_key_mask.shape != src.shape:
                raise ValueError(f"src_key_mask must be shaped like src {tuple(src.shape)}, got {tuple(src_key_mask.shape)}.")
            src_mask = combine_masks(src_mask, key_padding_mask(src_key_mask))  # (B, 1, 1, S)
        out = self.encoder(src, mask=src_mask, return_trace=return_trace, head_mask=head_mask)
        if return_trace:
            return out[0], src_mask, out[1]
        return out, src_mask

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src_mask: Tensor | None,
        tgt_pad_id: int | None = None,
        cache: ModelCache | None = None,
        return_trace: bool = False,
        head_mask: Tensor | None = None,
        cross_head_mask: Tensor | None = None,
    ):
        """tgt (B, T) new target tokens, memory (B, S, D) -> logits (B, T, V) [, StackTrace].

        head_mask, cross_head_mask (n_layers, H) scale the decoder's self- and cross-attention heads.
        """
        cached = cache.length if cache is not None else 0
        self_mask = self_attention_mask(tgt.shape[1], cached, True, tgt.device)
        if tgt_pad_id is not None and cache is None:
            self_mask = combine_masks(self_mask, padding_mask(tgt, tgt_pad_id))
        out = self.decoder(tgt, mask=self_mask, memory=memory, memory_mask=src_mask, cache=cache,
                           return_trace=return_trace, head_mask=head_mask, cross_head_mask=cross_head_mask)
        if return_trace:
            return self.lm_head(out[0]), out[1]
        return self.lm_head(out)  # (B, T, V)

    def forward(self, src: Tensor, tgt: Tensor, src_pad_id: int | None = None, tgt_pad_id: int | None = None,
                return_trace: bool = False, head_mask: dict[str, Tensor] | None = None,
                src_key_mask: Tensor | None = None):
        """src (B, S), tgt (B, T) -> logits (B, T, V); with return_trace, (logits, Seq2SeqTrace).

        head_mask: any of "encoder", "decoder", "cross", each (n_layers, H); 1 keeps a head,
        0 removes its output before W_O (as if its W_O columns were zero), values between scale it.
        src_key_mask (B, S) bool: False hides a source token as a key (see `encode`).
        """
        heads = split_head_mask(head_mask)
        if not return_trace:
            memory, src_mask = self.encode(src, src_pad_id, head_mask=heads["encoder"], src_key_mask=src_key_mask)
            return self.decode(tgt, memory, src_mask, tgt_pad_id, head_mask=heads["decoder"],
                               cross_head_mask=heads["cross"])
        memory, src_mask, encoder_trace = self.encode(src, src_pad_id, return_trace=True, head_mask=heads["encoder"],
                                                      src_key_mask=src_key_mask)
        logits, decoder_trace = self.decode(tgt, memory, src_mask, tgt_pad_id, return_trace=True,
                                            head_mask=heads["decoder"], cross_head_mask=heads["cross"])
        return logits, Seq2SeqTrace(encoder_trace, decoder_trace, src_mask, logits)

    @torch.no_grad()
    def generate(
        self,
        src: Tensor,
        start_id: int,
        end_id: int,
        max_new_tokens: int,
        use_cache: bool = True,
        src_pad_id: int | None = None,
        suppress_ids: Sequence[int] = (),
    ) -> Tensor:
        """Greedy translation of src (B, S) -> (B, 1 + n) ids starting with start_id, n <= max_new_tokens.

        Stops when every row has produced end_id; a finished row keeps emitting end_id. The ids in
        suppress_ids are never chosen (e.g. <pad> and <s>: `model.sampling.never_generated`).
        """
        if 1 + max_new_tokens > self.config.max_len:
            raise ValueError(f"1 + max_new_tokens must be at most max_len={self.config.max_len}.")
        memory, src_mask = self.encode(src, src_pad_id)
        out = torch.full((src.shape[0], 1), start_id, dtype=torch.long, device=src.device)  # (B, 1)
        cache = self.new_cache(capacity=1 + max_new_tokens) if use_cache else None
        finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        new_tokens = out
        for _ in range(max_new_tokens):
            logits = self.decode(new_tokens, memory, src_mask, cache=cache) if use_cache else self.decode(out, memory, src_mask)
            next_id = suppress(logits[:, -1], suppress_ids).argmax(dim=-1)  # (B,)
            next_id = torch.where(finished, torch.full_like(next_id, end_id), next_id)
            out = torch.cat([out, next_id[:, None]], dim=1)
            new_tokens = next_id[:, None]
            finished |= next_id == end_id
            if finished.all():
                break
        return out
