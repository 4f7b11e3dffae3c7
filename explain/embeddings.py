"""Embedding and positional tables of a checkpoint: the numbers the embeddings and positional pages show.

Legend: V vocab, D d_model, L max_len (the context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from model import LoadedCheckpoint, sinusoidal_table

from .labels import display_token


@dataclass(frozen=True)
class EmbeddingFacts:
    """How the token vectors are made: the table's size and the scale the model multiplies them by."""

    d_model: int
    vocab_size: int
    scale: float | None  # sqrt(d_model) when the model scales embeddings (the original paper), else None
    pos_encoding: str  # "learned" | "sinusoidal" | "rope" | "none"
    max_len: int
    mla: bool = False  # multi-head latent attention: RoPE turns only its decoupled rotary key


def embedding_facts(checkpoint: LoadedCheckpoint) -> EmbeddingFacts:
    config = checkpoint.config
    table = embedding_table(checkpoint)  # (V, D)
    return EmbeddingFacts(config.d_model, table.shape[0], math.sqrt(config.d_model) if config.scale_embeddings else None,
                          config.pos_encoding, config.max_len, config.attention_variant == "MLA")


@dataclass(frozen=True)
class VocabProjection:
    """Every token's embedding projected on the two principal components of the embedding table."""

    coords: np.ndarray  # (V, 2)
    tokens: tuple[str, ...]
    explained: tuple[float, float]  # share of the variance each component holds


def embedding_table(checkpoint: LoadedCheckpoint) -> torch.Tensor:
    """The token embedding matrix (V, D) of the stack that reads the user's text."""
    model = checkpoint.model
    stack = model.decoder if checkpoint.architecture == "gpt" else model.encoder
    return stack.embed.token.weight.detach()


def project_vocabulary(checkpoint: LoadedCheckpoint) -> VocabProjection:
    """PCA of the embedding table by SVD of the centred matrix (deterministic, signs fixed)."""
    table = embedding_table(checkpoint).double()  # (V, D)
    centred = table - table.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)  # vh (min(V, D), D)
    axes = vh[:2]  # (2, D)
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))  # largest loading positive
    coords = centred @ (axes * signs).T  # (V, 2)
    variance = singular.pow(2)
    share = (variance[:2] / variance.sum()).tolist() + [0.0, 0.0]
    tokens = [display_token(t) for t in checkpoint.tokenizer.tokens] if checkpoint.tokenizer else []
    if len(tokens) != table.shape[0]:
        tokens = [str(i) for i in range(table.shape[0])]
    return VocabProjection(coords.float().numpy(), tuple(tokens), (share[0], share[1]))


def sinusoidal(length: int, d_model: int) -> np.ndarray:
    """The sinusoidal table of the original paper, (length, d_model), from the model's own code."""
    return sinusoidal_table(length, d_model).numpy()  # (length, D)


def positional_table(checkpoint: LoadedCheckpoint) -> np.ndarray | None:
    """The checkpoint's whole positional table (max_len, D), learned or sinusoidal; None if it has none."""
    model = checkpoint.model
    stack = model.decoder if checkpoint.architecture == "gpt" else model.encoder
    position = stack.embed.position
    if position is None:
        return None
    with torch.no_grad():
        return position(checkpoint.config.max_len).detach().numpy().copy()  # (max_len, D)

