"""Pieces shared by the GPT and the encoder-decoder: the input embedding and GPT-2 initialisation.

Legend: B batch, T length, D d_model, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from .embeddings import TokenEmbedding, make_positional


@dataclass(frozen=True)
class EmbeddingTrace:
    ids: Tensor  # (B, T)
    token_embeddings: Tensor  # (B, T, D) the looked-up rows, times sqrt(D) if the model scales
    positional: Tensor | None  # (T, D); (B, T, D) when rows had their own positions (padding); None without
    summed: Tensor  # (B, T, D) what enters the first layer (before dropout)


class InputEmbedding(nn.Module):
    """Token embedding plus positional encoding, then dropout."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, pos_encoding: str, scale: bool, dropout: float):
        super().__init__()
        self.token = TokenEmbedding(vocab_size, d_model, scale)
        self.position = make_positional(pos_encoding, max_len, d_model)
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor, start: int = 0, return_trace: bool = False, positions: Tensor | None = None):
        """ids (B, T) at positions start..start+T-1, or at `positions` (B, T) when given -> (B, T, D).

        Explicit positions are how a padded batch counts real tokens only: a left-padded row's
        first real token is at position 0, as it would be alone.
        """
        if ids.dim() != 2:
            raise ValueError(f"token ids must be shaped (B, T), got {tuple(ids.shape)}.")
        if positions is not None:
            return self._at_positions(ids, positions, return_trace)
        if start + ids.shape[1] > self.max_len:
            raise ValueError(
                f"sequence of {start + ids.shape[1]} tokens is longer than the model's context "
                f"(max_len={self.max_len}); shorten the input."
            )
        tokens = self.token(ids)  # (B, T, D)
        positional = None if self.position is None else self.position(ids.shape[1], start)  # (T, D)
        summed = tokens if positional is None else tokens + positional  # (B, T, D)
        out = self.dropout(summed)
        if return_trace:
            return out, EmbeddingTrace(ids, tokens, positional, summed)
        return out


    def _at_positions(self, ids: Tensor, positions: Tensor, return_trace: bool):
        if positions.shape != ids.shape:
            raise ValueError(f"positions {tuple(positions.shape)} must match the ids {tuple(ids.shape)}.")
        tokens = self.token(ids)  # (B, T, D)
        positional = None if self.position is None else self.position.at(positions)  # (B, T, D)
        summed = tokens if positional is None else tokens + positional  # (B, T, D)
        out = self.dropout(summed)
        if return_trace:
            return out, EmbeddingTrace(ids, tokens, positional, summed)
        return out


RESIDUAL_PROJECTIONS = ("out_proj", "w_out")  # layers whose output is added to the residual stream


def init_gpt2(model: nn.Module, n_layers: int) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by
    1/sqrt(2 * n_layers) so the residual stream's variance does not grow with depth.

    With PyTorch's default init the reversal task often stalls for hundreds of steps.
    """
    residual_std = 0.02 / math.sqrt(2 * n_layers)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            is_residual = name.rsplit(".", 1)[-1] in RESIDUAL_PROJECTIONS
            nn.init.normal_(module.weight, mean=0.0, std=residual_std if is_residual else 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared (tied) tensor counted once."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class StackTrace:
    """An embedding, every layer's trace, and the final norm's output (pre-norm models)."""

    embedding: EmbeddingTrace
    layers: tuple  # tuple[LayerTrace, ...]
    final_norm: Tensor | None  # (B, T, D)
    output: Tensor  # (B, T, D) what leaves the stack
