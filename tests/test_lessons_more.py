"""Lessons 5-8 and RoPE's relative positions: each right answer against an independent computation from the
model itself, the answer following the input (or the checkpoint), and clear refusals."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch

from explain.experiments import EVAL_SEED, EVAL_SEQUENCES
from explain.lesson_types import CellsAnswer, ChoiceAnswer, Problem, check
from explain.lessons_more import ALIGN_SHARE, solve_alignment, solve_head_off, solve_padding
from explain.lessons_more_scores import ENTROPY_OPTIONS, NONE_OF_THEM, ROPE_HEAD, solve_rope_relative, solve_scaling
from model import load_checkpoint, trace
from model.masks import causal_mask
from tests.conftest import save_tiny_user_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PI = "3 1 4 1 5 9 2 6"


@pytest.fixture(scope="module")
def shipped():
    names = ("reversal-mha", "reversal-mqa", "reversal-gqa", "reversal-rope", "reversal-mla", "dates")
    return {name: load_checkpoint(f"checkpoints/{name}") for name in names}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    save_tiny_user_models(root)
    return {name: load_checkpoint(root / name) for name in ("tiny-dates", "tiny-words")}


def traced_ids(checkpoint, text: str) -> list[int]:
    """What a reversal GPT traces: n symbols and its greedy answer (2n - 1 tokens), other lengths as typed."""
    ids = checkpoint.tokenizer.encode(text)
    if len(ids) == checkpoint.task.n:
        ids = checkpoint.model.generate(torch.tensor([ids]), len(ids), temperature=0.0)[0, : 2 * len(ids) - 1].tolist()
    return ids


def solved(problem: Problem) -> Problem:
    assert not problem.error, problem.error
    assert problem.question and problem.explanation and problem.evidence
    return problem


def assert_checks(answer, right_response, wrong_response) -> None:
    assert check(answer, right_response).right
    verdict = check(answer, wrong_response)
    assert not verdict.right and verdict.message.startswith("Not yet")


# Lesson 5: padding


def padded_cells(lengths: list[int], side: str) -> set[tuple[int, int]]:
    width = max(lengths)
    return {(b, p) for b, n in enumerate(lengths) for p in range(width)
            if (p < width - n if side == "left" else p >= n)}


@pytest.mark.parametrize(("name", "text", "second_length"), [
    ("reversal-mha", PI, 4), ("reversal-mha", "3 1 4", 8), ("dates", "25.12.2023", 16),
    ("dates", "25 december 2023", 17)])
def test_padding_cells_are_the_pad_positions_and_the_model_ignores_them(shipped, name, text, second_length):
    checkpoint = shipped[name]
    problem = solved(solve_padding(checkpoint, text))
    ids = checkpoint.tokenizer.encode(text) if name == "dates" else traced_ids(checkpoint, text)
    side = "right" if name == "dates" else "left"
    assert problem.answer.cells == padded_cells([len(ids), second_length], side)
    assert_checks(problem.answer, problem.answer.cells, problem.answer.cells - {min(problem.answer.cells)})
    assert "float rounding" in problem.explanation


def test_padding_answer_follows_the_input(shipped):
    cells = {text: solve_padding(shipped["dates"], text).answer.cells
             for text in ("25.12.2023", "25 december 2023", "1 january 2000")}
    assert len(set(map(frozenset, cells.values()))) == 3


def test_the_padded_batch_matches_each_row_alone():
    """What the padding lesson's explanation claims, recomputed with the model directly."""
    checkpoint = load_checkpoint("checkpoints/reversal-mha")
    rows = [checkpoint.tokenizer.encode(PI), checkpoint.tokenizer.encode("3 1 4")]
    ids = torch.zeros(2, 8, dtype=torch.long)
    real = torch.zeros(2, 8, dtype=torch.bool)
    ids[0], real[0] = torch.tensor(rows[0]), True
    ids[1, 5:], real[1, 5:] = torch.tensor(rows[1]), True
    record = trace(checkpoint.model, ids, attention_mask=real)
    for layer in record.decoder.layers:
        assert torch.all(layer.self_attention.weights[1][..., :5] == 0)
    alone = checkpoint.model(torch.tensor([rows[1]]))[0]
    assert torch.allclose(record.logits[1, 5:], alone, atol=1e-4)


# Lesson 6: cross-attention as alignment


def fewest_holding_half(weights: np.ndarray) -> set[int]:
    picked, total = set(), 0.0
    for j in sorted(range(len(weights)), key=lambda j: -weights[j]):
        if total >= ALIGN_SHARE:
            break
        picked.add(j)
        total += weights[j]
    return picked


@pytest.mark.parametrize("text", ["25 december 2023", "monday, july 20, 1969", "03.09.2001"])
def test_alignment_cells_come_from_the_last_cross_attention(shipped, text):
    checkpoint = shipped["dates"]
    problem = solved(solve_alignment(checkpoint, text))
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    src = torch.tensor([tokenizer.encode(text)])
    out = model.generate(src, tokenizer.bos_id, tokenizer.eos_id, 12, src_pad_id=tokenizer.pad_id)[0].tolist()
    written = tokenizer.decode(out[1: out.index(tokenizer.eos_id, 1)])
    record = trace(model, src=src, tgt=torch.tensor([out[:11]]), src_pad_id=tokenizer.pad_id)
    weights = record.decoder.layers[-1].cross_attention.weights[0].mean(0).double().numpy()  # (T, S)
    expected = {(r, j) for r, row in enumerate((5, 6)) for j in fewest_holding_half(weights[row])}
    assert problem.answer.cells == expected
    assert written[5:7] in problem.question and problem.answer.row_labels[0].endswith(written[5])
    assert_checks(problem.answer, problem.answer.cells, frozenset({(0, 0), (1, 0)}) ^ problem.answer.cells)


def test_alignment_answer_follows_the_input(shipped):
    answers = [solve_alignment(shipped["dates"], text).answer.cells for text in ("25 december 2023", "25.12.2023")]
    assert answers[0] != answers[1]


def test_alignment_refuses_a_gpt_and_an_output_without_a_month(shipped, tiny):
    assert "encoder-decoder" in solve_alignment(shipped["reversal-mha"], PI).error
    refused = solve_alignment(tiny["tiny-dates"], "25 december 2023")
    assert "not a yyyy-mm-dd date" in refused.error and refused.answer is None


# Lesson 7: switch a head off


def accuracy_with_head_zeroed(checkpoint, layer: int, head: int | None) -> float:
    """The reversed half's accuracy with W_O's columns of one head set to zero (None: intact)."""
    model = copy.deepcopy(checkpoint.model)
    if head is not None:
        d_head = checkpoint.config.d_head
        with torch.no_grad():
            model.decoder.layers[layer].self_attn.out_proj.weight[:, head * d_head:(head + 1) * d_head] = 0
    task = checkpoint.task
    seq = task.make_sequences(EVAL_SEQUENCES, torch.Generator().manual_seed(EVAL_SEED))
    with torch.no_grad():
        hits = model(seq[:, :-1]).argmax(-1) == seq[:, 1:]
    return float(hits[:, task.n - 1:].float().mean())


@pytest.mark.parametrize(("name", "most"), [("reversal-mha", "layer 0 head 3"), ("reversal-mqa", "layer 0 head 0")])
def test_head_off_right_head_is_the_costlier_one(shipped, name, most):
    checkpoint = shipped[name]
    problem = solved(solve_head_off(checkpoint, PI))
    answer = problem.answer
    assert isinstance(answer, ChoiceAnswer) and answer.options[answer.right] == most
    intact = accuracy_with_head_zeroed(checkpoint, 0, None)
    costs = {}
    for option in answer.options:
        layer, head = int(option.split()[1]), int(option.split()[3])
        costs[option] = intact - accuracy_with_head_zeroed(checkpoint, layer, head)
    assert max(costs, key=costs.get) == most
    bars = problem.evidence[0]
    assert bars.values[0] == pytest.approx(100 * intact, abs=1e-4)
    assert bars.values[1:3] == pytest.approx([100 * (intact - costs[o]) for o in answer.options], abs=1e-4)
    assert_checks(answer, answer.right, 1 - answer.right)


def test_head_off_answer_follows_the_checkpoint(shipped):
    answers = {name: solve_head_off(shipped[name], PI).answer for name in ("reversal-mha", "reversal-mqa")}
    assert answers["reversal-mha"] != answers["reversal-mqa"]
    assert answers["reversal-mha"].right != answers["reversal-mqa"].right


def test_head_off_refuses_redundant_heads_and_a_task_without_accuracy(shipped, tiny):
    assert "do each other's work" in solve_head_off(shipped["reversal-gqa"], PI).error
    assert "accuracy to measure" in solve_head_off(tiny["tiny-words"], "to be or not").error


# Lesson 8: scaling by sqrt(d_head)


def entropy_kept(checkpoint, text: str) -> tuple[float, float]:
    """Mean entropy (bits) of every row that reads at least two keys, with and without the scaling."""
    ids = torch.tensor([traced_ids(checkpoint, text)])
    record = trace(checkpoint.model, ids)
    length = ids.shape[1]
    allowed = causal_mask(length).numpy()
    sums, rows = np.zeros(2), 0
    for layer in record.decoder.layers:
        att = layer.self_attention
        raw = att.raw_scores[0].double().numpy()  # (H, T, T)
        for scale_index, scale in enumerate((math.sqrt(att.q.shape[-1]), 1.0)):
            scores = np.where(allowed, raw / scale, -np.inf)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            if scale_index == 0:
                assert np.allclose(weights, att.weights[0].numpy(), atol=1e-5)
            logs = np.log2(np.where(weights > 0, weights, 1.0))
            sums[scale_index] += -(weights * logs).sum(-1)[:, 1:].sum()  # row 0 reads one key
        rows += raw.shape[0] * (length - 1)
    return sums[0] / rows, sums[1] / rows


@pytest.mark.parametrize(("name", "text"), [("reversal-mha", PI), ("reversal-mla", PI), ("reversal-rope", "3 1 4 1 5")])
def test_scaling_band_is_the_measured_entropy_kept(shipped, name, text):
    checkpoint = shipped[name]
    problem = solved(solve_scaling(checkpoint, text))
    scaled, unscaled = entropy_kept(checkpoint, text)
    kept = unscaled / scaled
    band = 1 if kept >= 0.9 else 2 if kept >= 0.5 else 3
    assert problem.answer.right == band and problem.answer.options == ENTROPY_OPTIONS
    assert problem.evidence[0].values[-2:] == pytest.approx((scaled, unscaled), abs=1e-6)
    assert f"{scaled:.2f} bits" in problem.question
    assert_checks(problem.answer, band, 0)


def test_scaling_answer_follows_the_checkpoint_and_the_numbers_the_input(shipped):
    answers = {name: solve_scaling(shipped[name], PI) for name in ("reversal-mha", "reversal-mla")}
    assert answers["reversal-mha"].answer.right != answers["reversal-mla"].answer.right
    other = solve_scaling(shipped["reversal-mha"], "0 1 2 3 4 5 6 7")
    assert other.evidence[0].values != answers["reversal-mha"].evidence[0].values
    assert "√64" in answers["reversal-mla"].question  # MLA scales by its content and rotary widths together


def test_scaling_refuses_a_single_key(shipped):
    assert "single key" in solve_scaling(shipped["reversal-mha"], "3").error


# RoPE: the score depends on the distance only


def rotate(x: np.ndarray, position: int, base: float) -> np.ndarray:
    """Pairs (i, i + Dh/2) turned by position * base^(-2i/Dh), written out with sines and cosines."""
    half = x.shape[0] // 2
    angles = position * base ** (-np.arange(half) * 2.0 / x.shape[0])
    a, b = x[:half], x[half:]
    return np.concatenate([a * np.cos(angles) - b * np.sin(angles), a * np.sin(angles) + b * np.cos(angles)])


@pytest.mark.parametrize(("name", "text"), [("reversal-rope", PI), ("reversal-rope", "3 1 4 1 5"),
                                            ("reversal-mla", "0 1 2 3 4 5 6 7")])
def test_rope_right_placement_keeps_the_distance_and_the_score(shipped, name, text):
    checkpoint = shipped[name]
    problem = solved(solve_rope_relative(checkpoint, text))
    answer = problem.answer
    placements = [tuple(int(n) for n in re.findall(r"\d+", option)) for option in answer.options[:-1]]
    words = problem.question.split("their own positions, ")[1].split(".")[0].split(" and ")
    query, key = int(words[0]), int(words[1])
    assert answer.options[-1] == NONE_OF_THEM
    assert answer.options[answer.right] != NONE_OF_THEM
    assert placements[answer.right][0] - placements[answer.right][1] == query - key
    # the traced score, and the scores at the placements, from the trace's vectors before rotation
    assert problem.question.split("the q of token ")[1].startswith(f"`{query}:")
    att = trace(checkpoint.model, torch.tensor([traced_ids(checkpoint, text)])).decoder.layers[0].self_attention
    width = att.k_unrotated.shape[-1]  # Dh; MLA: the rotary key's R, after d_head content numbers
    q = att.q_unrotated[0, ROPE_HEAD, query, -width:].double().numpy()
    k_row = checkpoint.config.kv_head_of(ROPE_HEAD) if att.k_unrotated.shape[1] > 1 else 0
    k = att.k_unrotated[0, k_row, key].double().numpy()
    content = float(att.q[0, ROPE_HEAD, query, :-width] @ att.k[0, ROPE_HEAD, key, :-width])  # 0 without MLA
    base = checkpoint.config.rope_base
    traced = float(att.raw_scores[0, ROPE_HEAD, query, key])
    assert content + rotate(q, query, base) @ rotate(k, key, base) == pytest.approx(traced, rel=1e-4)
    for (a, b), shown in zip(placements, problem.evidence[0].values[1:]):
        assert content + rotate(q, a, base) @ rotate(k, b, base) == pytest.approx(shown, rel=1e-4, abs=1e-4)
    assert_checks(answer, answer.right, len(answer.options) - 1)


def test_rope_answer_follows_the_input(shipped):
    first, second = (solve_rope_relative(shipped["reversal-rope"], text) for text in (PI, "3 1 4 1 5"))
    assert first.answer.options != second.answer.options and first.question != second.question


@pytest.mark.parametrize(("solve", "name", "text", "message"), [
    (solve_rope_relative, "reversal-mha", PI, "no rotary position embeddings"),
    (solve_rope_relative, "reversal-rope", "3", "at least two tokens"),
    (solve_padding, "dates", "hello!", "only knows the characters"),
    (solve_alignment, "dates", "", "The input is empty"),
    (solve_head_off, "reversal-mha", PI + " x", "only knows the symbols"),
    (solve_scaling, "reversal-mha", "3 1 banana", "only knows the symbols"),
])
def test_bad_input_gets_a_clear_message(shipped, solve, name, text, message):
    problem = solve(shipped[name], text)
    assert message in problem.error and problem.answer is None and not problem.question


def test_cells_answers_name_their_axes(shipped):
    answer = solve_padding(shipped["reversal-mha"], PI).answer
    assert isinstance(answer, CellsAnswer) and answer.row_noun == "batch row" and len(answer.row_labels) == 2


@pytest.mark.parametrize(("solve", "name", "text"), [
    (solve_padding, "dates", "25.12.2023"), (solve_alignment, "dates", "25 december 2023"),
    (solve_head_off, "reversal-mqa", PI), (solve_scaling, "dates", "25 december 2023"),
    (solve_rope_relative, "reversal-rope", PI)])
def test_every_piece_of_evidence_draws_with_every_bar_in_view(shipped, solve, name, text):
    from viz.figures_lessons import plot_evidence

    for evidence in solved(solve(shipped[name], text)).evidence:
        figure = plot_evidence(evidence)
        if hasattr(evidence, "labels"):  # bars: the axis holds the lowest and the highest bar
            low, high = figure.layout.yaxis.range
            assert low <= min(0.0, *evidence.values) and high >= max(evidence.values)


def test_explore_links_open_the_view_that_explains(shipped):
    padding = dict(solve_padding(shipped["dates"], "25.12.2023").explore_params)
    assert padding == {"batch": "true", "second": "25 december 2023", "attention": "encoder"}
    assert dict(solve_alignment(shipped["dates"], "25.12.2023").explore_params) == {"attention": "cross", "layer": "1"}
    assert dict(solve_padding(shipped["reversal-mha"], PI).explore_params)["pad"] == "left"
