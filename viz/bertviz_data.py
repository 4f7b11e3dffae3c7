"""Attention maps and tokens checked against bertviz's data contract, as the entries its views read.

bertviz's contract: one attention map per layer, shaped ``(1, H, T_q, T_k)`` (a batch of one) or
``(H, T_q, T_k)``, as a torch tensor or numpy array; tokens are lists of ``str`` whose lengths match
``T_q`` (left column) and ``T_k`` (right column). Errors say which argument was wrong and how.

Legend: L layers, H heads, T_q query positions, T_k key positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike

DECIMALS = 4  # attention weights are rounded to this many decimals in the document


class Entry(TypedDict):
    """One item of bertviz's ``params.attention``: a kind of attention and its tokens."""

    name: str | None
    attn: list  # (L, H, T_q, T_k) nested lists of floats
    left_text: list[str]
    right_text: list[str]


def layer_array(layer: ArrayLike, index: int, name: str) -> np.ndarray:
    """One layer's attention (tensor or array) as a float64 array (H, T_q, T_k)."""
    if hasattr(layer, "detach"):  # a torch tensor, without importing torch here
        layer = layer.detach().cpu().float().numpy()
    array = np.asarray(layer, dtype=np.float64)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"{name}[{index}] has batch size {array.shape[0]}; only a batch of 1 "
                f"can be shown (expected shape (1, H, T_q, T_k), got {array.shape})"
            )
        array = array[0]
    if array.ndim != 3:
        raise ValueError(
            f"{name}[{index}] must have shape (1, H, T_q, T_k) or (H, T_q, T_k), got {array.shape}"
        )
    return array


def stack_layers(attention: Sequence[ArrayLike] | None, name: str) -> np.ndarray:
    """Stack a per-layer list of attention maps into one array (L, H, T_q, T_k)."""
    if attention is None:
        raise ValueError(f"{name} is required")
    layers = [layer_array(layer, i, name) for i, layer in enumerate(attention)]
    if not layers:
        raise ValueError(f"{name} must contain at least one layer")
    first = layers[0].shape  # (H, T_q, T_k)
    for i, layer in enumerate(layers):
        if layer.shape != first:
            raise ValueError(f"{name}[{i}] has shape {layer.shape} but {name}[0] has {first}")
    if 0 in first:
        raise ValueError(f"{name} has an empty dimension: per-layer shape {first}")
    stacked = np.stack(layers)  # (L, H, T_q, T_k)
    if not np.isfinite(stacked).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return stacked


def check_tokens(tokens: Sequence[str] | None, name: str) -> list[str]:
    """``tokens`` as a list of str, rejecting a bare string or non-str items."""
    if tokens is None:
        raise ValueError(f"{name} is required")
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a list of str, not a single str")
    tokens = list(tokens)
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"{name}[{i}] must be str, got {type(token).__name__}")
    return tokens


def entry(name: str | None, attn: np.ndarray, left: list[str], right: list[str], what: str) -> Entry:
    """One entry, after checking attn (L, H, T_q, T_k) against the left and right tokens."""
    _, _, t_q, t_k = attn.shape
    if t_q != len(left):
        raise ValueError(f"{what} has {t_q} query positions but {len(left)} tokens were given: {left!r}")
    if t_k != len(right):
        raise ValueError(f"{what} has {t_k} key positions but {len(right)} tokens were given: {right!r}")
    return Entry(name=name, attn=np.round(attn, DECIMALS).tolist(), left_text=left, right_text=right)


def self_attention_entries(attn: np.ndarray, tokens: list[str], sentence_b_start: int | None) -> list[Entry]:
    """Entries of a self-attention model (L, H, T, T); with ``sentence_b_start``, also the A/B filters."""
    if sentence_b_start is None:
        return [entry(None, attn, tokens, tokens, "attention")]
    full = entry("All", attn, tokens, tokens, "attention")
    if not 0 < sentence_b_start < len(tokens):
        raise ValueError(
            f"sentence_b_start must be in 1..{len(tokens) - 1} for {len(tokens)} tokens, "
            f"got {sentence_b_start}"
        )
    a, b = slice(0, sentence_b_start), slice(sentence_b_start, len(tokens))
    pairs = [("A", a, "A", a), ("B", b, "B", b), ("A", a, "B", b), ("B", b, "A", a)]
    entries = [full]
    for left_name, left, right_name, right in pairs:
        sub = attn[:, :, left, right]  # (L, H, |left|, |right|)
        name = f"Sentence {left_name} -> Sentence {right_name}"
        entries.append(entry(name, sub, tokens[left], tokens[right], name))
    return entries


def encoder_decoder_entries(
    encoder_attention: Sequence[ArrayLike] | None,
    decoder_attention: Sequence[ArrayLike] | None,
    cross_attention: Sequence[ArrayLike] | None,
    encoder_tokens: Sequence[str] | None,
    decoder_tokens: Sequence[str] | None,
) -> tuple[list[Entry], tuple[int, int]]:
    """Entries 'Encoder'/'Decoder'/'Cross' (those given) and their shared (layers, heads)."""
    kinds = [
        ("Encoder", encoder_attention, "encoder_attention", "encoder_tokens", "encoder_tokens"),
        ("Decoder", decoder_attention, "decoder_attention", "decoder_tokens", "decoder_tokens"),
        ("Cross", cross_attention, "cross_attention", "decoder_tokens", "encoder_tokens"),
    ]
    given = {"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens}
    entries: list[Entry] = []
    dims: dict[str, tuple[int, int]] = {}
    for name, attention, attn_name, left_name, right_name in kinds:
        if attention is None:
            continue
        stacked = stack_layers(attention, attn_name)  # (L, H, T_q, T_k)
        left = check_tokens(given[left_name], left_name)
        right = check_tokens(given[right_name], right_name)
        entries.append(entry(name, stacked, left, right, attn_name))
        dims[attn_name] = stacked.shape[:2]
    if not entries:
        raise ValueError("at least one of encoder_attention, decoder_attention, cross_attention is required")
    if len(set(dims.values())) > 1:
        detail = ", ".join(f"{k}: {l} layers x {h} heads" for k, (l, h) in dims.items())
        raise ValueError(f"all attention kinds must have the same number of layers and heads ({detail})")
    return entries, next(iter(dims.values()))


def check_layer_and_heads(
    layer: int | None, heads: Sequence[int] | None, n_layers: int, n_heads: int
) -> tuple[int | None, list[int] | None]:
    """The head view's initial ``layer`` and ``heads``, validated and made JSON-ready."""
    if layer is not None and not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    if heads is None:
        return (None if layer is None else int(layer)), None
    heads = [int(h) for h in heads]
    if not heads:
        raise ValueError("heads must not be empty (use None for all heads)")
    bad = [h for h in heads if not 0 <= h < n_heads]
    if bad:
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {bad}")
    return (None if layer is None else int(layer)), heads
