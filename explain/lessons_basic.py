"""Lessons 1-4: each `*_problem(checkpoint, text)` poses one question and finds its answer in the model.

Legend: T traced length, n reversal symbols, L layers, H heads, Hkv key/value heads, Dh head dim.

    causal_mask_problem   which cells of the first GRID_TOKENS x GRID_TOKENS does the mask hide? (the trace's mask)
    chance_halves_problem the reversal model's accuracy on the first and the second half (fresh sequences,
                          explain.experiments.accuracy_by_position)
    mirror_head_problem   which key does the mirror head weight most at one query? (the trace's weights)
    cache_bytes_problem   the KV-cache bytes after N tokens (the model's own cache, generated greedily;
                          the formula from explain.cache, which checks it against that cache)

A problem never holds a typed-in answer: change the checkpoint or the input and the answer follows.
"""

from __future__ import annotations

import torch

from model import LoadedCheckpoint
from model.generation_trace import GenerationSession, generate_all
from model.kv_math import format_bytes

from .cache import calculate
from .experiments import accuracy_by_position, head_choice
from .generation import BYTES_PER_ELEMENT, generation_view
from .inputs import code_span, read_input, task_of
from .labels import display_token, token_labels
from .lesson_types import BarsEvidence, CellsAnswer, ChoiceAnswer, MatrixEvidence, NumberAnswer, NumbersAnswer, Problem
from .trace import PreparedTrace, prepare_trace

GRID_TOKENS = 6  # the causal-mask grid: 36 cells are enough to see the pattern, and few enough to click
HALF_TOLERANCE = 5.0  # percentage points: a prediction of chance (10%) or of 100% counts
CACHE_NEW_TOKENS = 4  # tokens the model writes after the prompt in the cache lesson
CLEAN_MIRROR = 0.8  # a head this much on the mirrored key (row mean) is called a mirror head outright


def _traced_gpt(checkpoint: LoadedCheckpoint, text: str) -> PreparedTrace | Problem:
    """The trace of a GPT on text, or the refusal a lesson shows instead."""
    if checkpoint.architecture != "gpt":
        return Problem.refused("This lesson needs a GPT (decoder-only) model; this checkpoint is an encoder-decoder.")
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        return Problem.refused(" ".join(note.message for note in prepared.notes))
    return prepared


def causal_mask_problem(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Pick the cells the causal mask hides among the first GRID_TOKENS tokens (the model's own mask)."""
    prepared = _traced_gpt(checkpoint, text)
    if isinstance(prepared, Problem):
        return prepared
    size = min(GRID_TOKENS, len(prepared.tokens))
    layers = prepared.attention("self")
    weights = torch.stack([a.weights[0] for a in layers])  # (L, H, T, T)
    allowed = _allowed(layers[0].mask, weights.shape[-2:])  # (T, T)
    labels = tuple(token_labels(prepared.tokens[:size]))
    masked = frozenset((q, k) for q in range(size) for k in range(size) if not allowed[q, k])
    largest_masked = float(weights[..., ~allowed].max()) if (~allowed).any() else 0.0
    mask_values = tuple(tuple(float(allowed[q, k]) for k in range(size)) for q in range(size))
    head = tuple(tuple(float(weights[0, 0, q, k]) for k in range(size)) for q in range(size))
    shown = "all" if size == len(prepared.tokens) else f"the first {size}"
    return Problem(
        question=(f"The model reads {len(prepared.tokens)} tokens; the grid shows {shown} of them. Each row is a "
                  f"query (the token doing the looking), each column a key (the token looked at). **Tick every "
                  f"cell the causal mask hides**: where the query may *not* read the key."),
        answer=CellsAnswer(labels, labels, masked),
        evidence=(MatrixEvidence("The model's causal mask: 1 allowed, 0 hidden", labels, labels, mask_values,
                                 "allowed", masked),
                  MatrixEvidence("Layer 0, head 0: attention weights (hidden cells outlined)", labels, labels, head,
                                 "weight", masked)),
        explanation=(f"Query *i* may read keys 0 to *i*, never a later one: of these {size * size} cells the mask "
                     f"allows {size * size - len(masked)} (the diagonal and below) and hides {len(masked)} (above "
                     f"the diagonal). A token never sees the tokens after it, which are what it learns to predict. "
                     f"The softmax gives every hidden cell a weight of exactly {largest_masked:g} (the largest over "
                     f"all {weights.shape[0]} layers and {weights.shape[1]} heads)."),
    )


def _allowed(mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    """A trace's mask (None or broadcastable to (B, H, T_q, T_k)) as a (T_q, T_k) bool tensor."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    return mask.reshape(-1, *mask.shape[-2:])[0].expand(shape).bool()  # (T_q, T_k)


def _reversal_task(checkpoint: LoadedCheckpoint):
    """The checkpoint's reversal task, or None."""
    task = task_of(checkpoint)
    return task if getattr(task, "name", None) == "reversal" else None


def chance_halves_problem(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Predict the accuracy on the first and the second half of reversal sequences (the input plays no part)."""
    task = _reversal_task(checkpoint)
    if task is None:
        return Problem.refused("This lesson needs a reversal model: its sequences are random symbols, then the "
                               "same symbols reversed.")
    measured = accuracy_by_position(checkpoint, head_choice(checkpoint))
    first_positions = measured.accuracy[: measured.determined_from]
    first, second = 100 * sum(first_positions) / len(first_positions), 100 * measured.headline
    chance = 100 * measured.chance
    n = task.n
    return Problem(
        question=(f"This model reads sequences of {2 * n} symbols: {n} random ones from a vocabulary of "
                  f"{task.vocab}, then the same {n} reversed, and at every position it predicts the next symbol. "
                  f"On fresh sequences, **what accuracy (in %) does it reach on the first half** (predicting "
                  f"symbols 2 to {n}, positions 0-{measured.determined_from - 1}) **and on the second half** (the "
                  f"{n} reversed symbols, positions {measured.determined_from}-{len(measured.accuracy) - 1})? "
                  f"Within {HALF_TOLERANCE:g} points counts as right."),
        answer=NumbersAnswer(("first half", "second half"), (first, second), HALF_TOLERANCE, "%", 0.0, 100.0),
        evidence=(BarsEvidence("Accuracy at each position, fresh sequences", measured.positions,
                               tuple(100 * a for a in measured.accuracy), "accuracy", "%"),
                  BarsEvidence("The two halves, and chance", ("first half", "second half", "chance"),
                               (first, second, chance), "accuracy", "%")),
        explanation=(f"Measured on fresh sequences: {first:.1f}% on the first half, {second:.1f}% on the second; "
                     f"chance is 1 in {task.vocab} = {chance:.0f}%. The first {n} symbols are random, so nothing "
                     f"before a symbol tells which comes next: even a perfect model can only guess. Each symbol of "
                     f"the second half copies one the model has already read, and the causal mask lets every "
                     f"position read the whole prompt, so it can be right every time."),
    )


def mirror_head_problem(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """Which key does the head that follows the mirrored position weight most, at one query of the answer?"""
    task = _reversal_task(checkpoint)
    if task is None:
        return Problem.refused("This lesson needs a reversal model: it looks for the head that reads the mirrored "
                               "symbol.")
    prepared = _traced_gpt(checkpoint, text)
    if isinstance(prepared, Problem):
        return prepared
    n = task.n
    if prepared.prompt_length != n or len(prepared.tokens) != 2 * n - 1:
        return Problem.refused(f"Type exactly {n} symbols (the model then writes their reverse), such as "
                               f"{code_span(' '.join(checkpoint.tokenizer.tokens[:n]))}.")
    weights = torch.stack([a.weights[0] for a in prepared.attention("self")])  # (L, H, T, T)
    rows = torch.arange(n - 1, 2 * n - 1)  # the answer rows: each writes one reversed symbol
    mirror = 2 * n - 2 - rows  # the key holding the symbol that row writes next
    follows = weights[:, :, rows, mirror].mean(-1)  # (L, H): mean weight on the mirrored key
    layer, head = divmod(int(follows.argmax()), follows.shape[1])
    query = n + n // 2 - 1  # an answer row whose mirrored key is inside the prompt, away from both ends
    row = weights[layer, head, query, : query + 1]  # (query + 1,) keys it may read
    keys = tuple(token_labels(prepared.tokens, prepared.prompt_length))
    options = keys[: query + 1]
    right = int(row.argmax())
    head_labels = tuple(f"L{l} H{h}" for l in range(follows.shape[0]) for h in range(follows.shape[1]))
    rows_labels = tuple(prepared.query_labels("self"))
    return Problem(
        question=(f"The model reverses {code_span(' '.join(prepared.tokens[:n]))} one symbol at a time. "
                  f"**Layer {layer}, head {head}** {_mirror_role(float(follows.max()), len(head_labels))} At the "
                  f"query {code_span(keys[query])} (position {query}, which reads "
                  f"{code_span(display_token(prepared.tokens[query]))}), **which key does this head weight most?**"),
        answer=ChoiceAnswer(options, right),
        evidence=(MatrixEvidence(f"Layer {layer}, head {head}: attention weights (the asked cell outlined)",
                                 rows_labels, keys, _matrix(weights[layer, head]), "weight",
                                 frozenset({(query, right)})),
                  BarsEvidence("Each head's mean weight on the mirrored key (answer rows)", head_labels,
                               tuple(float(v) for v in follows.flatten()), "mean weight")),
        explanation=_mirror_explanation(prepared, layer, head, query, right, float(follows.max()), row, n),
        explore_params=(("layer", str(layer)), ("head", str(head))),
    )


def _mirror_role(follows: float, heads: int) -> str:
    """What the question says of the head: a clean mirror head, or only the closest of the heads to one."""
    share = f"on average {follows:.0%} of an answer row's weight goes to the mirrored key"
    if follows >= CLEAN_MIRROR:
        return f"is its mirror head: of all {heads} heads, it follows the mirrored position best ({share})."
    return f"comes closest to a mirror head, though no head of this model mirrors cleanly ({share})."


def _matrix(values: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    """A (R, C) tensor as nested tuples of floats."""
    return tuple(tuple(float(v) for v in r) for r in values.tolist())


def _mirror_explanation(prepared: PreparedTrace, layer: int, head: int, query: int, right: int, follows: float,
                        row: torch.Tensor, n: int) -> str:
    mirror = 2 * n - 2 - query
    labels = token_labels(prepared.tokens, prepared.prompt_length)
    writes = display_token(prepared.predictions[query])
    text = (f"Head {head} of layer {layer} puts {follows:.0%} of its weight on the mirrored key, on average over the "
            f"{n} answer rows. Position {query} writes the next reversed symbol, {code_span(writes)}; it sits at "
            f"position {mirror} of the prompt ({code_span(labels[mirror])}), the mirror of position {query + 1}. ")
    if right == mirror:
        return text + f"The head puts {float(row[right]):.0%} of this row's weight there."
    return text + (f"This row's largest weight, {float(row[right]):.0%}, is on {code_span(labels[right])} instead; "
                   f"the mirrored key gets {float(row[mirror]):.0%}.")


def cache_bytes_problem(checkpoint: LoadedCheckpoint, text: str) -> Problem:
    """The KV-cache bytes once the model's own cache holds N tokens (the prompt, then greedy tokens)."""
    if checkpoint.architecture != "gpt":
        return Problem.refused("This lesson needs a GPT (decoder-only) model; this checkpoint is an encoder-decoder.")
    model_input = read_input(checkpoint, text)
    if not model_input.ok:
        return Problem.refused(" ".join(note.message for note in model_input.notes))
    config, prompt = checkpoint.config, len(model_input.ids)
    tokens = min(prompt + CACHE_NEW_TOKENS, config.max_len)
    session = GenerationSession(checkpoint.model, model_input.ids, time_repeats=1)
    generate_all(session, tokens - prompt + 1)  # the prefill caches the prompt; each later step one token
    cache = generation_view(checkpoint, session).cache  # its formula is checked against the measured bytes
    measured = session.steps[-1].cache_bytes
    mla = cache.kv_latent_dim > 0
    rows = calculate(config.n_layers, config.n_heads, cache.n_kv_heads, cache.d_head, tokens, 1, "float32",
                     (cache.kv_latent_dim, cache.rope_dim) if mla else None)
    shape = (f"each layer caches, per token, a latent c_KV of C = {cache.kv_latent_dim} numbers and a rotary key "
             f"of R = {cache.rope_dim} numbers (the heads' keys and values are projected up from the latent, not "
             f"cached)" if mla else
             f"H = {config.n_heads} query heads share H_kv = {cache.n_kv_heads} key/value "
             f"head{'s' if cache.n_kv_heads > 1 else ''} of d_head = {cache.d_head} numbers")
    return Problem(
        question=(f"This GPT uses **{cache.variant}**: {config.n_layers} layers; {shape}. Numbers are float32 "
                  f"({BYTES_PER_ELEMENT} bytes). It reads your {prompt} tokens, then writes tokens until its KV "
                  f"cache holds **N = {tokens} tokens** (batch 1). **How many bytes does the cache of all layers "
                  f"hold then?** Type a whole number of bytes."),
        answer=NumberAnswer(float(measured), 0.0, "bytes", 0.0),
        evidence=(BarsEvidence(f"KV cache after {tokens} tokens: this model's shape with each way of caching",
                               tuple(r.label for r in rows) + ("measured: this model's own cache",),
                               tuple(float(r.total_bytes) for r in rows) + (float(measured),), "bytes", "bytes"),),
        explanation=(f"{cache.variant}: {cache.formula}. The model's own cache, read after it had generated, held "
                     f"{measured:,} bytes ({format_bytes(measured)}). The same shape as "
                     + ", ".join(f"{r.label}: {r.total_bytes:,} bytes" for r in rows) + "."),
    )
