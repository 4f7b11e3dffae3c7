"""The tracing API: run a model once and return every intermediate tensor the app shows.

The record comes from the model's own forward pass (`return_trace=True`), not from a
second implementation that could disagree with it. Tensors are detached and moved
to the CPU, so the record is safe to cache and plot.

What a trace holds (see the dataclasses in attention.py, layers.py, stack.py, gpt.py,
transformer.py): token ids, token embeddings, positional encodings, their sum; per
layer the residual stream in and out of each sublayer, the norms' outputs, per head
Q, K, V, raw scores q.k, scaled scores, mask, softmax weights, head outputs, the heads
concatenated, the attention output; the feed-forward hidden layer before and after its
activation; the final norm; the logits. RoPE models add q and the new keys before
rotation; MLA models add the latent c_KV and the rotary key, with K and V up-projected.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from .gpt import GPT, GPTTrace
from .transformer import Seq2SeqTrace, Transformer


def detach_to_cpu(record):
    """A copy of a trace (nested dataclasses and tuples) with every tensor detached on the CPU."""
    if isinstance(record, Tensor):
        return record.detach().cpu()
    if isinstance(record, tuple):
        return tuple(detach_to_cpu(item) for item in record)
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        changes = {f.name: detach_to_cpu(getattr(record, f.name)) for f in dataclasses.fields(record)}
        return dataclasses.replace(record, **changes)
    return record


@torch.no_grad()
def trace(
    model: nn.Module,
    idx: Tensor | None = None,
    *,
    src: Tensor | None = None,
    tgt: Tensor | None = None,
    src_pad_id: int | None = None,
    tgt_pad_id: int | None = None,
    head_mask: Tensor | dict[str, Tensor] | None = None,
    attention_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
) -> GPTTrace | Seq2SeqTrace:
    """Trace one forward pass in eval mode.

    GPT: `trace(gpt, idx)` with idx (B, T), optionally `head_mask` (n_layers, H) and `attention_mask`
    (B, T) bool, True for real tokens (see GPT.forward). Encoder-decoder: `trace(transformer, src=...,
    tgt=...)`, optionally `head_mask` a dict with any of "encoder", "decoder", "cross" (padding there
    comes from src_pad_id / tgt_pad_id). `key_mask` (B, T) bool hides the tokens where it is False as
    keys, without renumbering positions: the GPT's tokens, or the encoder-decoder's source tokens.
    """
    for name, ids in (("idx", idx), ("src", src), ("tgt", tgt)):
        if ids is not None and (ids.dim() != 2 or ids.shape[1] == 0):
            # an empty sequence would trace to empty matrices: nothing to show, so say so
            raise ValueError(f"trace needs {name} shaped (B, T) with at least one token; got {tuple(ids.shape)}.")
    was_training = model.training
    model.eval()  # dropout off: the trace shows what the model computes at inference
    try:
        if isinstance(model, GPT):
            if idx is None:
                raise ValueError("trace(gpt, idx) needs token ids idx shaped (B, T).")
            if isinstance(head_mask, dict):
                raise TypeError("a GPT's head_mask is one tensor (n_layers, n_heads), not a dict.")
            _, record = model(idx, return_trace=True, head_mask=head_mask, attention_mask=attention_mask,
                              key_mask=key_mask)
        elif isinstance(model, Transformer):
            if src is None or tgt is None:
                raise ValueError("trace(transformer, src=..., tgt=...) needs source and target ids.")
            if attention_mask is not None:
                raise ValueError("an encoder-decoder's padding comes from src_pad_id and tgt_pad_id, not attention_mask.")
            if head_mask is not None and not isinstance(head_mask, dict):
                raise TypeError('an encoder-decoder\'s head_mask is a dict with keys "encoder", "decoder", "cross".')
            _, record = model(src, tgt, src_pad_id, tgt_pad_id, return_trace=True, head_mask=head_mask,
                              src_key_mask=key_mask)
        else:
            raise TypeError(f"cannot trace a {type(model).__name__}; expected GPT or Transformer.")
    finally:
        model.train(was_training)
    return detach_to_cpu(record)
