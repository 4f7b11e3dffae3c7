"""The decoder-only GPT, and the layer stack it shares with the encoder-decoder.

Legend: B batch, T length, D d_model, V vocab_size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import GPTConfig, TransformerConfig
from .kv_cache import ModelCache
from .layers import DecoderLayer
from .masks import causal_mask, combine_masks, key_padding_mask, position_ids
from .norms import make_norm
from .sampling import sample_next
from .stack import InputEmbedding, StackTrace, count_parameters, init_gpt2


class LayerStack(nn.Module):
    """Input embedding, n_layers layers, and a final norm (pre-norm models only:
    in a post-norm model every layer already ends with a norm)."""

    def __init__(self, config: GPTConfig | TransformerConfig, vocab_size: int, layer_factory):
        super().__init__()
        c = config
        self.embed = InputEmbedding(vocab_size, c.max_len, c.d_model, c.pos_encoding, c.scale_embeddings, c.dropout)
        self.layers = nn.ModuleList(layer_factory() for _ in range(c.n_layers))
        self.final_norm = make_norm(c.norm, c.d_model) if c.norm_position == "pre" else None

    def forward(
        self,
        ids: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: ModelCache | None = None,
        return_trace: bool = False,
        head_mask: Tensor | None = None,
        cross_head_mask: Tensor | None = None,
        positions: Tensor | None = None,
    ):
        """ids (B, T) -> hidden states (B, T, D), or (hidden, StackTrace) with return_trace.

        head_mask, cross_head_mask (n_layers, H): per layer, the heads kept (1), removed (0) or scaled;
        positions (B, T): each token's position when rows are padded (default: cache length onwards).
        """
        start = cache.length if cache is not None else 0
        for name, heads in (("head_mask", head_mask), ("cross_head_mask", cross_head_mask)):
            if heads is not None and (heads.dim() != 2 or heads.shape[0] != len(self.layers)):
                raise ValueError(f"{name} must be shaped (n_layers={len(self.layers)}, n_heads), "
                                 f"got {tuple(heads.shape)}.")
        if return_trace:
            x, embedding_trace = self.embed(ids, start, return_trace=True, positions=positions)
        else:
            x = self.embed(ids, start, positions=positions)  # (B, T, D)
        if positions is None:
            positions = torch.arange(start, start + ids.shape[1], device=ids.device)  # (T,)
        layer_traces = []
        for i, layer in enumerate(self.layers):
            x = layer(
                x, mask=mask, memory=memory, memory_mask=memory_mask,
                cache=cache.self_attention[i] if cache is not None else None,
                cross_cache=cache.cross_attention[i] if cache is not None and cache.cross_attention else None,
                return_trace=return_trace,
                head_mask=None if head_mask is None else head_mask[i],
                cross_head_mask=None if cross_head_mask is None else cross_head_mask[i],
                positions=positions,
            )
            if return_trace:
                x, layer_trace = x
                layer_traces.append(layer_trace)
        normed = self.final_norm(x) if self.final_norm is not None else None
        out = normed if normed is not None else x
        if return_trace:
            return out, StackTrace(embedding_trace, tuple(layer_traces), normed, out)
        return out


def self_attention_mask(length: int, cached: int, causal: bool, device) -> Tensor | None:
    """The mask for `length` new queries after `cached` cached tokens, or None when none is needed.

    Decoding one token with a cache needs none: every cached key is in its past.
    """
    if not causal or length == 1:
        return None
    return causal_mask(length, cached + length, device=device)  # (T, T_cached + T)


@dataclass(frozen=True)
class GPTTrace:
    """Everything one GPT forward pass computed."""

    decoder: StackTrace
    logits: Tensor  # (B, T, V)


class GPT(nn.Module):
    """Decoder-only language model: token + position embeddings, masked self-attention blocks, LM head."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.decoder = LayerStack(config, config.vocab_size, lambda: DecoderLayer(config))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_gpt2(self, config.n_layers)
        if config.tie_weights:
            self.lm_head.weight = self.decoder.embed.token.weight  # one (V, D) matrix for both ends

    @property
    def num_parameters(self) -> int:
        return count_parameters(self)

    def new_cache(self, capacity: int = 0) -> ModelCache:
        """An empty KV cache, one per layer, preallocated for `capacity` tokens."""
        return ModelCache.empty(self.config.n_layers, capacity)

    def forward(
        self,
        idx: Tensor,
        cache: ModelCache | None = None,
        return_trace: bool = False,
        head_mask: Tensor | None = None,
        attention_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
    ):
        """idx (B, T) -> logits (B, T, V); with return_trace, (logits, GPTTrace).

        With a cache, idx holds only the new tokens; their K/V are appended to it.
        head_mask (n_layers, H): 1 keeps a head, 0 removes its output before W_O, values between scale it.
        attention_mask (B, T) bool, True for real tokens (with a cache: (B, T_cached + T), every key's row):
        padding on either side; padded keys get weight 0 and positions count real tokens only, so a
        real position's logits are those of its row run alone. A padding position's logits mean nothing.
        key_mask (B, T) bool, False for tokens to hide as keys (an experiment): no query reads them and
        the other weights are renormalised, but positions are not renumbered (unlike attention_mask).
        """
        hidden = self._hidden(idx, cache, return_trace, head_mask, attention_mask, key_mask)
        if return_trace:
            hidden, stack_trace = hidden
        logits = self.lm_head(hidden)  # (B, T, V)
        if return_trace:
            return logits, GPTTrace(stack_trace, logits)
        return logits

    def _hidden(self, idx: Tensor, cache: ModelCache | None, return_trace: bool = False,
                head_mask: Tensor | None = None, attention_mask: Tensor | None = None,
                key_mask: Tensor | None = None):
        """idx (B, T) -> the layer stack's output (B, T, D) (with its StackTrace when asked)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be token ids shaped (B, T), got {tuple(idx.shape)}.")
        cached = cache.length if cache is not None else 0
        mask = self_attention_mask(idx.shape[1], cached, self.config.causal, idx.device)
        positions = None
        if attention_mask is not None:
            if attention_mask.shape != (idx.shape[0], cached + idx.shape[1]):
                raise ValueError(f"attention_mask must be shaped (B, T_cached + T) = "
                                 f"{(idx.shape[0], cached + idx.shape[1])}, got {tuple(attention_mask.shape)}.")
            mask = combine_masks(mask, key_padding_mask(attention_mask))  # (B, 1, T, T_cached + T)
            positions = position_ids(attention_mask, idx.shape[1])  # (B, T)
        if key_mask is not None:
            if key_mask.shape != (idx.shape[0], cached + idx.shape[1]):
                raise ValueError(f"key_mask must be shaped (B, T_cached + T) = "
                                 f"{(idx.shape[0], cached + idx.shape[1])}, got {tuple(key_mask.shape)}.")
            mask = combine_masks(mask, key_padding_mask(key_mask))  # (B, 1, T, T_cached + T)
        return self.decoder(idx, mask=mask, cache=cache, return_trace=return_trace, head_mask=head_mask,
                            positions=positions)

    def _next_token_logits(self, idx: Tensor, cache: ModelCache | None, attention_mask: Tensor | None = None) -> Tensor:
        """Logits of the last position only, (B, V): all generation needs, without the other T - 1 rows."""
        return self.lm_head(self._hidden(idx, cache, attention_mask=attention_mask)[:, -1])  # (B, V)

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        attention_mask: Tensor | None = None,
        *,
        top_p: float | None = None,
        suppress_ids: Sequence[int] = (),
    ) -> Tensor:
        """Extend idx (B, T) by max_new_tokens tokens -> (B, T + max_new_tokens). Temperature 0 is greedy.

        top_k / top_p keep the k most likely tokens / the fewest reaching probability p; the ids in
        suppress_ids are never generated (model/sampling.py; pass `never_generated(tokenizer)` for a
        text a reader will see: no <unk>, <pad> or <s>).

        Without the cache every step recomputes the whole sequence (the slow, obvious way);
        both ways give the same tokens. A batch of prompts of different lengths is padded on the
        left with attention_mask (B, T) False there: each row's last position is then a real token,
        and each row gets the tokens it would get alone (right padding would put pads between a
        prompt and its continuation).
        """
        total = idx.shape[1] + max_new_tokens
        if max_new_tokens < 0:
            raise ValueError("max_new_tokens must be >= 0.")
        if total > self.config.max_len:
            raise ValueError(
                f"prompt ({idx.shape[1]}) + new tokens ({max_new_tokens}) exceeds the context "
                f"(max_len={self.config.max_len})."
            )
        # inference_mode is no_grad without autograd's per-op bookkeeping (version counters,
        # view tracking): measurably faster when decoding small models one token at a time.
        with torch.inference_mode():
            cache = self.new_cache(capacity=total) if use_cache else None
            out = idx
            mask = attention_mask
            logits = self._next_token_logits(idx, cache, mask)  # prefill: (B, V)
            for step in range(max_new_tokens):
                next_id = sample_next(logits, temperature, top_k, generator, top_p=top_p,
                                      suppress_ids=suppress_ids)  # (B, 1)
                out = torch.cat([out, next_id], dim=1)
                if mask is not None:
                    mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)  # (B, T + step + 1)
                if step + 1 < max_new_tokens:
                    logits = self._next_token_logits(next_id if use_cache else out, cache, mask)  # (B, V)
        return out.clone()  # made outside inference mode: an ordinary tensor callers may edit in place
