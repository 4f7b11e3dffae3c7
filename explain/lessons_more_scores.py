"""Two lessons about attention scores: lesson 8 (the 1/sqrt(Dh) scaling) and RoPE's relative positions.

Legend: H heads, T_q query length, T_k key length, Dh key width (d_head; MLA: d_head + its rotary width R).

    solve_scaling         choice: how much of the weights' entropy is left when the scores are not scaled
    solve_rope_relative   choice: which placement of the same q and k keeps their score (RoPE)

Every right answer is computed here from the model's own trace; nothing is typed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from model import LoadedCheckpoint, apply_rope
from model.attention import AttentionTrace

from .inputs import Note, code_span
from .lesson_types import BarsEvidence, ChoiceAnswer, Problem
from .rope import rotated_parts
from .trace import AttentionKindName, PreparedTrace, prepare_trace

ENTROPY_OPTIONS = ("Flatter: the entropy rises",
                   "About the same: the weights keep at least 90% of their entropy",
                   "Sharper: they keep between half and 90% of it",
                   "Much sharper: they keep less than half of it")
ROPE_LAYER, ROPE_HEAD = 0, 0
NONE_OF_THEM = "None of them: the score depends on where the two tokens are, not only on their distance"
SAME_SCORE = 1e-4  # relative: float32 rounding of a rotation, far below any real change of a score


def _refused(notes: tuple[Note, ...]) -> Problem:
    return Problem.refused(" ".join(n.message for n in notes if n.level == "error") or "This input cannot be read.")


@dataclass(frozen=True)
class LayerEntropy:
    """Mean entropy (bits) of one layer's attention rows, with the trace's scaling and without it."""

    kind: AttentionKindName
    layer: int
    scaled: float
    unscaled: float
    rows: int  # (head, query) rows averaged: those that may read at least two keys

    @property
    def label(self) -> str:
        return f"layer {self.layer}" if self.kind == "self" else f"{self.kind} {self.layer}"


def entropy_bits(weights: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each distribution along the last axis: (..., T_k) -> (...). A zero weight adds 0."""
    return -torch.special.xlogy(weights, weights).sum(-1) / math.log(2)


def layer_entropy(kind: AttentionKindName, layer: int, att: AttentionTrace) -> LayerEntropy:
    """The trace's own weights against the softmax of its raw (unscaled) scores, under the same mask."""
    allowed = torch.ones_like(att.raw_scores, dtype=torch.bool) if att.mask is None else \
        att.mask.expand(att.raw_scores.shape)  # (1, H, T_q, T_k)
    unscaled = torch.softmax(att.raw_scores.double().masked_fill(~allowed, float("-inf")), dim=-1)
    spread = allowed.sum(-1) >= 2  # (1, H, T_q): a row with one key has entropy 0 either way
    return LayerEntropy(kind, layer, float(entropy_bits(att.weights.double()[spread]).mean()),
                        float(entropy_bits(unscaled[spread]).mean()), int(spread.sum()))


def scaling_entropies(prepared: PreparedTrace) -> tuple[LayerEntropy, ...]:
    """Every kind and layer of attention in the trace, in the order the pages list them."""
    return tuple(layer_entropy(kind, layer, att) for kind in prepared.kinds
                 for layer, att in enumerate(prepared.attention(kind)))


def entropy_option(kept: float) -> int:
    """The index in ENTROPY_OPTIONS for the share of entropy kept without the scaling."""
    return 0 if kept > 1.0 else 1 if kept >= 0.9 else 2 if kept >= 0.5 else 3


def solve_scaling(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Lesson 8, choice: without dividing the scores by sqrt(Dh), how much of its entropy does the softmax keep?

    "Sharper or flatter?" alone has one answer for every model (a softmax of scores multiplied by a factor
    above 1 is never flatter), so the options ask how much sharper, in bands of the entropy kept, averaged
    over every layer, head and row that reads at least two keys. The band depends on the model (and, near a
    band's edge, on the input); the measured entropies per layer are the evidence.
    """
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        return _refused(prepared.notes)
    layers = scaling_entropies(prepared)
    rows = sum(e.rows for e in layers)
    if not rows:
        return Problem.refused("Every query here reads a single key, so its softmax is 1 with or without the "
                               "scaling: type a longer input.")
    scaled = sum(e.scaled * e.rows for e in layers) / rows
    unscaled = sum(e.unscaled * e.rows for e in layers) / rows
    width = prepared.attention(prepared.kinds[0])[0].q.shape[-1]
    mla = " (MLA: its content and rotary parts together)" if checkpoint.config.attention_variant == "MLA" else ""
    question = (f"Each attention score of this model is q·k over keys of {width} numbers{mla}, divided by "
                f"√{width} ≈ {math.sqrt(width):.2f} before the softmax. With that scaling, the weights have an "
                f"average entropy of **{scaled:.2f} bits** (every layer and head, each row that reads at least "
                "two keys; a row spread evenly over k keys has log₂ k bits). Without the division, the weights "
                "would be:")
    kept = unscaled / scaled
    labels = tuple(f"{e.label} {how}" for e in layers for how in ("scaled", "unscaled"))
    values = tuple(v for e in layers for v in (e.scaled, e.unscaled))
    evidence = (BarsEvidence(f"Entropy of the attention weights, with and without dividing by √{width}",
                             labels + ("all scaled", "all unscaled"), values + (scaled, unscaled), "entropy",
                             "bits"),)
    explanation = (f"Measured: {scaled:.2f} bits with the scaling, {unscaled:.2f} without, so the weights keep "
                   f"{kept:.0%} of their entropy. Without the division every score is √{width} times larger, "
                   "the gaps between scores grow by the same factor, and the softmax turns wider gaps into a "
                   "sharper distribution, nearer one-hot. q·k adds up more products as Dh grows, so its spread "
                   "grows like √Dh: dividing by it keeps the softmax out of saturation, where almost no gradient "
                   "reaches the keys it ignores.")
    return Problem(question, ChoiceAnswer(ENTROPY_OPTIONS, entropy_option(kept)), evidence, explanation)


def placed_score(att: AttentionTrace, base: float, head: int, kv_head: int, query: int, key: int,
                 at: tuple[int, int]) -> float:
    """The score of this query's q and this key's k (from the trace, before rotation) turned to positions `at`.

    RoPE turns the last Dh numbers (MLA: the rotary R); MLA's content part has no position and is added as is.
    """
    q, k = rotated_parts(att, head, kv_head, query, key)  # (Dh,), (Dh,)
    width = q.shape[0]
    k_row = kv_head if att.k.shape[1] > 1 else 0
    content = att.q[0, head, query, :-width].float() @ att.k[0, k_row, key, :-width].float()  # empty without MLA
    q_at = apply_rope(q[None], torch.tensor([at[0]]), base)[0]  # (Dh,)
    k_at = apply_rope(k[None], torch.tensor([at[1]]), base)[0]  # (Dh,)
    return float(content + q_at @ k_at)


def solve_rope_relative(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """RoPE, choice: the same q and k placed elsewhere; which placement keeps their score?

    q is the last token's (layer ROPE_LAYER, head ROPE_HEAD), k the earlier token that head reads most. The
    options: both moved by the same shift, only q moved, the two positions swapped, in position order, and
    "none of them". The right one is the placement whose measured score equals the traced one (to float
    rounding), so it is found, not assumed: on a model without RoPE the lesson refuses instead.
    """
    config = checkpoint.config
    if config.pos_encoding != "rope":
        return Problem.refused("This model has no rotary position embeddings (RoPE): its positions are added to "
                               "the embeddings, so scores depend on where tokens are. Pick reversal-rope or "
                               "reversal-mla.")
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        return _refused(prepared.notes)
    kind = prepared.kinds[0]
    att = prepared.attention(kind)[ROPE_LAYER]
    query = att.weights.shape[-2] - 1
    if query < 1:
        return Problem.refused("RoPE's scores need two tokens at two positions: type at least two tokens.")
    key = int(att.weights[0, ROPE_HEAD, query, :query].argmax())
    shift = -key if key > 0 else 1
    if query + shift >= config.max_len:
        return Problem.refused(f"The input fills the model's {config.max_len} positions, so the pair cannot be "
                               "moved: type a shorter input.")
    kv_head = config.kv_head_of(ROPE_HEAD)

    def score(at: tuple[int, int]) -> float:
        return placed_score(att, config.rope_base, ROPE_HEAD, kv_head, query, key, at)

    traced = score((query, key))
    placements = sorted({(query + shift, key + shift), (query + shift, key), (key, query)})
    scores = [score(at) for at in placements]
    same = [i for i, s in enumerate(scores) if abs(s - traced) <= SAME_SCORE * max(1.0, abs(traced))]
    if len(same) > 1:
        return Problem.refused("Two placements happen to give the same score here: type another input.")
    options = tuple(f"q at position {a}, k at position {b}" for a, b in placements) + (NONE_OF_THEM,)
    right = same[0] if same else len(placements)
    labels = prepared.key_labels(kind)
    question = (f"RoPE turns each q and k by angles proportional to its position. In layer {ROPE_LAYER}, head "
                f"{ROPE_HEAD}, the q of token {code_span(labels[query])} and the k of token "
                f"{code_span(labels[key])} score "
                f"**{traced:.3f}** (q·k before scaling) at their own positions, {query} and {key}. Keep both "
                "vectors but turn them to other positions: which placement gives the same score?")
    evidence = (BarsEvidence(f"Layer {ROPE_LAYER}, head {ROPE_HEAD}: the same q and k at other positions",
                             (f"as traced: q at {query}, k at {key}",) + options[:-1], (traced, *scores),
                             "score q·k"),)
    lines = [f"q at {a}, k at {b} (distance {a - b}): {s:.3f}" for (a, b), s in zip(placements, scores)]
    mla = " MLA's content part has no position, so only its rotary part turns." if config.attention_variant == "MLA" \
        else ""
    explanation = (f"As traced the distance is {query - key} and the score {traced:.3f}. Measured: "
                   + "; ".join(lines) + ". Turning q by m and k by n gives the same score as turning k alone by "
                   f"n − m, so a score depends on the distance between the tokens, never on where they are.{mla}")
    return Problem(question, ChoiceAnswer(options, right), evidence, explanation,
                   explore_params=(("rope_layer", str(ROPE_LAYER)), ("rope_head", str(ROPE_HEAD))))
