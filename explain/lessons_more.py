"""Lessons 5-7: each solver reads a checkpoint and an input and returns a Problem.

Legend: B batch rows, T length (GPT, or decoder input), S source length, H heads, Dh key width.

    solve_padding         cells: the keys the padding mask removes in a padded batch (batch row x position)
    solve_alignment       cells: the source characters the month of a date reads (dates, cross-attention)
    solve_head_off        choice: which of two heads costs more accuracy when switched off

Lesson 8 (scaling) and RoPE's relative positions are in explain/lessons_more_scores.py.

Every right answer is computed here from the model's own trace or evaluation; nothing is typed in.
"""

from __future__ import annotations

import re

import numpy as np

from model import LoadedCheckpoint

from .experiments import EVAL_SEQUENCES, HeadRef, ablate, head_choice
from .importance import importance_map
from .inputs import Note, code_span, read_input
from .lesson_types import BarsEvidence, CellsAnswer, ChoiceAnswer, MatrixEvidence, Problem
from .padding import PaddedBatch, default_second_input, pad_batch
from .trace import prepare_trace

PAD_SIDE = "left"  # as generation pads a GPT's batch; an encoder's source is always padded on the right
ALIGN_SHARE = 0.5  # lesson 6: the fewest source characters that hold at least this share of a row's weight
MONTH = slice(5, 7)  # the month's characters in "yyyy-mm-dd"; decoder row i writes output character i
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MIN_GAP = 0.02  # lesson 7: two heads differ measurably when their accuracy drops differ by 2 points or more


def _refused(notes: tuple[Note, ...]) -> Problem:
    return Problem.refused(" ".join(n.message for n in notes if n.level == "error") or "This input cannot be read.")


def _tokens(count: int) -> str:
    return f"{count} token" + ("" if count == 1 else "s")


def _real_text(checkpoint: LoadedCheckpoint, batch: PaddedBatch, row: int) -> str:
    return checkpoint.tokenizer.decode([int(i) for i in batch.ids[row][batch.real[row]]])


def removed_keys(batch: PaddedBatch) -> np.ndarray:
    """(B, T) bool: keys no query of the row may read in the padded trace's first attention over the input."""
    stack = batch.record.decoder if batch.architecture == "gpt" else batch.record.encoder
    mask = stack.layers[0].self_attention.mask
    if mask is None:
        return np.zeros(batch.ids.shape, dtype=bool)
    width = batch.ids.shape[1]
    return ~mask.expand(batch.ids.shape[0], 1, width, width).any(dim=2)[:, 0].numpy()  # (B, T)


def solve_padding(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Lesson 5, cells: which keys does the padding mask remove in a batch of the input and a shorter/longer one?

    Cells of the (B, T) padding mask rather than of a (T, T) head grid: the padding mask is a key mask, the
    same for every query, so a row of the batch and a position say everything, on a grid small enough to pick
    by hand. The right cells come from the padded trace's mask; the explanation adds what the mask buys: the
    weights on removed keys, and the largest logit difference between the batch and each input run alone.
    """
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        return _refused(prepared.notes)
    second = default_second_input(checkpoint, text)
    batch, notes = pad_batch(checkpoint, prepared, second, PAD_SIDE)
    if batch is None:
        return _refused(notes)
    removed = removed_keys(batch)  # (B, T)
    lengths = batch.real.sum(1)
    if not removed.any():
        return Problem.refused(f"Both inputs have {lengths[0]} tokens, so the batch needs no padding: "
                               "type an input of another length.")
    gpt, side = batch.architecture == "gpt", batch.side
    rows = tuple(f"row {b}: {_tokens(n)}" for b, n in enumerate(lengths))
    cols = tuple(str(p) for p in range(batch.ids.shape[1]))
    first = "your input and the model's answer" if prepared.answer_starts_inside else "your input"
    question = (f"Two inputs go through {'the' if gpt else 'the encoder of the'} model in one batch. Row 0 is "
                f"{first}, {code_span(_real_text(checkpoint, batch, 0))} ({_tokens(lengths[0])}); row 1 is "
                f"{code_span(_real_text(checkpoint, batch, 1))} ({_tokens(lengths[1])}). The shorter row is padded "
                f"on the **{side}** to {len(cols)} positions. Which cells (batch row, key position) does the "
                "padding mask remove, so that no query of that row reads them?")
    padded_row = int(removed.sum(1).argmax())
    kind = "self" if gpt else "encoder"
    weights = batch.attention(kind, 0, padded_row).weights[0].mean(0).numpy()  # (T, T) head-averaged
    stack = batch.record.decoder if gpt else batch.record.encoder
    leak = max(float(layer.self_attention.weights[padded_row][..., removed[padded_row]].abs().max())
               for layer in stack.layers)
    cells = frozenset((int(b), int(p)) for b, p in zip(*np.nonzero(removed)))
    evidence = (
        MatrixEvidence("The padding mask in the trace: 1 = a key the row's queries may read, 0 = removed",
                       rows, cols, tuple(map(tuple, (~removed).astype(float).tolist())), "readable", cells,
                       "batch row", "key position"),
        MatrixEvidence(f"Row {padded_row}, layer 0, weights averaged over the heads: removed keys get nothing",
                       tuple(batch.query_labels(kind, padded_row)), tuple(batch.key_labels(kind, padded_row)),
                       tuple(map(tuple, weights.tolist())), "weight"))
    explanation = (f"The mask removes the {len(cells)} padding positions of row {padded_row}: no query reads them, "
                   f"in any layer or head (the largest weight on one is {leak:.1g}). The real tokens' outputs do "
                   "not change: the largest difference in any logit between the batch and each input run alone "
                   f"is {batch.max_difference:.1e}, float rounding. Padding lets inputs of different lengths "
                   "share one batch without one token's answer depending on it.")
    explore = (("batch", "true"), ("second", second)) + ((("pad", side),) if gpt else (("attention", kind),))
    return Problem(question, CellsAnswer(rows, cols, cells, "batch row", "key position"), evidence, explanation,
                   explore_params=explore)


def smallest_share(weights: np.ndarray, share: float = ALIGN_SHARE) -> tuple[int, ...]:
    """The fewest indices of weights (S,) whose weights add up to at least `share`, heaviest first."""
    order = np.argsort(-weights, kind="stable")
    count = int(np.searchsorted(np.cumsum(weights[order]), share)) + 1
    return tuple(int(i) for i in order[:count])


def solve_alignment(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Lesson 6, cells: which source characters do the two rows that write the month read?

    The rows are the decoder rows that write the month's two digits (rows 5 and 6 of "<s>yyyy-mm-dd"); the
    weights are those of the last cross-attention layer (the one nearest the output), averaged over its heads.
    Right: for each row, the fewest source characters holding at least half of its weight (`smallest_share`),
    a rule a student can check by adding up the weights the evidence shows.
    """
    if checkpoint.architecture != "transformer":
        return Problem.refused("This lesson needs an encoder-decoder such as the dates model: only it has "
                               "cross-attention, where the output reads the source.")
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        return _refused(prepared.notes)
    if not ISO_DATE.fullmatch(prepared.answer or ""):
        return Problem.refused(f"The model wrote {code_span(prepared.answer or '')}, which is not a yyyy-mm-dd "
                               "date, so it has no month to ask about: type a date such as `25 december 2023`.")
    layer = len(prepared.attention("cross")) - 1
    weights = prepared.attention("cross")[layer].weights[0].mean(0).double().numpy()  # (T, S) head-averaged
    month_rows = tuple(range(len(prepared.target_tokens)))[MONTH]
    picks = tuple(smallest_share(weights[row]) for row in month_rows)
    cells = frozenset((r, j) for r, picked in enumerate(picks) for j in picked)
    month = prepared.answer[MONTH]
    rows = tuple(prepared.query_labels("cross")[row] for row in month_rows)
    cols = tuple(prepared.labels)
    n_heads = prepared.attention("cross")[layer].weights.shape[1]
    question = (f"The model turns {code_span(prepared.input.text)} into {code_span(prepared.answer)}. Rows "
                f"{code_span(rows[0])} and {code_span(rows[1])} write the month {code_span(month)}. In the last "
                f"cross-attention layer (layer {layer}), averaged over its {n_heads} heads, which source characters "
                "does each of the two rows read? For each row, pick the fewest characters that together hold at "
                f"least {ALIGN_SHARE:.0%} of the row's weight.")
    shares = [", ".join(f"{code_span(cols[j])} ({weights[row, j]:.2f})" for j in picked) + f", together "
              f"{weights[row, list(picked)].sum():.2f}" for row, picked in zip(month_rows, picks)]
    evidence = (
        MatrixEvidence(f"Cross-attention, layer {layer}, averaged over the heads: the month's rows",
                       rows, cols, tuple(map(tuple, weights[list(month_rows)].tolist())), "weight", cells,
                       "output row", "source character"),
        MatrixEvidence(f"Cross-attention, layer {layer}, averaged over the heads: every output row",
                       tuple(prepared.query_labels("cross")), cols, tuple(map(tuple, weights.tolist())), "weight",
                       frozenset((month_rows[r], j) for r, j in cells), "output row", "source character"))
    explanation = (f"Row {code_span(rows[0])} reads {shares[0]}; row {code_span(rows[1])} reads {shares[1]}. "
                   "Cross-attention is an "
                   "alignment: to write each character the decoder looks up the part of the source that decides "
                   "it, wherever the date's format put it.")
    return Problem(question, CellsAnswer(rows, cols, cells, "output row", "source character"), evidence, explanation,
                   explore_params=(("attention", "cross"), ("layer", str(layer))))


def solve_head_off(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Lesson 7, choice: which of two heads, switched off alone, costs the task more accuracy?

    The two heads come from the model: the one whose ablation costs most, and one that costs least (among
    equals, one of the same layer first), listed in layer-head order. The accuracy is the task's own, on
    `EVAL_SEQUENCES` fresh sequences (explain.importance), so the answer depends on the checkpoint, not
    the input; the input's own answer, intact and with the right head off, is in the explanation.
    """
    model_input = read_input(checkpoint, text)
    if not model_input.ok:
        return _refused(model_input.notes)
    found = importance_map(checkpoint)
    if found is None:
        return Problem.refused("This lesson needs a task with an accuracy to measure (reversal or dates); "
                               "this checkpoint has none.")
    drops = {HeadRef(kind, layer, head): float(found.head_drop[k, layer, head]) for k, kind in enumerate(found.kinds)
             for layer in range(found.n_layers) for head in range(found.n_heads)}
    most = max(drops, key=drops.get)  # the first of equals, in kind-layer-head order
    least = min(drops, key=lambda ref: (drops[ref], (ref.kind, ref.layer) != (most.kind, most.layer)))
    if drops[most] - drops[least] < MIN_GAP:
        return Problem.refused(f"No head of this model costs measurably more than another when switched off alone "
                               f"(at most {100 * drops[most]:.1f} points of the {found.metric}): its heads do each "
                               "other's work. Switch off whole layers on the heads-off page, or pick another "
                               "checkpoint.")
    options = tuple(sorted((most, least)))
    k = found.kinds.index(most.kind)
    question = (f"Switch off one attention head of this model, alone. Which costs more {found.metric} "
                f"(now {found.baseline:.1%}, on {EVAL_SEQUENCES} fresh sequences): **{options[0].label}** or "
                f"**{options[1].label}**?")
    labels = ("every head on", *(f"{ref.label} off" for ref in options),
              f"all of {most.label.rsplit(' head', 1)[0]} off")
    values = (found.baseline, *(found.baseline - drops[ref] for ref in options),
              found.baseline - float(found.layer_drop[k, most.layer]))
    evidence = (BarsEvidence(f"{found.metric.capitalize()} with heads switched off ({EVAL_SEQUENCES} fresh "
                             "sequences)", labels, tuple(100 * v for v in values), found.metric, "%"),)
    explanation = (f"With {most.label} off the {found.metric} falls by {100 * drops[most]:.1f} points to "
                   f"{found.baseline - drops[most]:.1%}; with {least.label} off by {100 * drops[least]:.1f}. "
                   f"{_input_sentence(checkpoint, text, most)}A head matters when no other head does its job: "
                   f"switching off all of its layer costs {100 * found.layer_drop[k, most.layer]:.1f} points.")
    return Problem(question, ChoiceAnswer(tuple(ref.label for ref in options), options.index(most)), evidence,
                   explanation)


def _input_sentence(checkpoint: LoadedCheckpoint, text: str, ref: HeadRef) -> str:
    result = ablate(checkpoint, text, head_choice(checkpoint, (ref,)))
    if result.output_intact is None:
        return ""
    change = "the same" if not result.output_changed else code_span(result.output_ablated)
    return (f"On your input the model writes {code_span(result.output_intact)}; with {ref.label} off, {change}. ")
