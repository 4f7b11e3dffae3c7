"""The logit lens: what the model would predict if it stopped after each layer.

Legend: L n_layers, B batch, T length, D d_model, V vocab.

The residual stream after the embeddings and after each layer goes through the model's own
final norm (pre-norm models) and LM head: the last of these L + 1 readings is the model's
logits. From a trace, never a second forward pass: the lens reads exactly what was computed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .gpt import GPT, GPTTrace
from .stack import StackTrace
from .transformer import Seq2SeqTrace, Transformer


def residual_streams(stack: StackTrace) -> list[Tensor]:
    """The residual stream entering the first layer and leaving each layer: L + 1 tensors (B, T, D)."""
    return [stack.embedding.summed] + [layer.feed_forward_residual.residual_out for layer in stack.layers]


@torch.no_grad()
def logit_lens(model: nn.Module, record: GPTTrace | Seq2SeqTrace) -> Tensor:
    """(L + 1, B, T, V) logits read from the residual stream after the embeddings and after each layer.

    A GPT trace reads the GPT's decoder; an encoder-decoder trace reads the decoder (its LM head
    predicts target tokens). Entry L equals the trace's logits.
    """
    if isinstance(model, GPT) and isinstance(record, GPTTrace):
        stack_module = model.decoder
    elif isinstance(model, Transformer) and isinstance(record, Seq2SeqTrace):
        stack_module = model.decoder
    else:
        raise TypeError(f"logit_lens needs a GPT with a GPTTrace or a Transformer with a Seq2SeqTrace; "
                        f"got {type(model).__name__} and {type(record).__name__}.")
    device = model.lm_head.weight.device
    streams = torch.stack([s.to(device) for s in residual_streams(record.decoder)])  # (L + 1, B, T, D)
    was_training = model.training
    model.eval()
    try:
        normed = stack_module.final_norm(streams) if stack_module.final_norm is not None else streams
        return model.lm_head(normed).cpu()  # (L + 1, B, T, V)
    finally:
        model.train(was_training)
