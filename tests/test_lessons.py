"""Lessons as data: the catalog's entries, the answers their solve functions find in the model, check and
parse_number, the evidence figures."""

from __future__ import annotations

import dataclasses
import math

import pytest

from app_lib.checkpoints import list_checkpoints, load_model
from app_lib.tour import TOUR
from explain.examples import default_text
from explain.lesson_catalog import LESSONS, find_lesson
from explain.lesson_types import (
    BarsEvidence,
    CellsAnswer,
    ChoiceAnswer,
    MatrixEvidence,
    NumberAnswer,
    NumbersAnswer,
    answer_text,
    check,
    parse_number,
)
from explain.lessons_basic import (
    CACHE_NEW_TOKENS,
    CLEAN_MIRROR,
    GRID_TOKENS,
    cache_bytes_problem,
    causal_mask_problem,
    chance_halves_problem,
    mirror_head_problem,
)
from model import GPT, GPTConfig, LoadedCheckpoint
from model.kv_math import cache_bytes, latent_cache_bytes
from viz.figures_lessons import plot_evidence

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PI = "3 1 4 1 5 9 2 6"
KINDS = {"cells": CellsAnswer, "number": NumberAnswer, "numbers": NumbersAnswer, "choice": ChoiceAnswer}


def test_slugs_are_unique_url_keys():
    slugs = [lesson.slug for lesson in LESSONS]
    assert len(set(slugs)) == len(slugs) and all(s.replace("-", "").isalnum() and s == s.lower() for s in slugs)
    assert find_lesson("causal-mask").title == "The causal mask" and find_lesson("nothing") is None


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_entry_links_a_tour_page_and_shipped_checkpoints(lesson):
    assert lesson.explore in {page.path for page in TOUR}
    shipped = {e.name for e in list_checkpoints() if e.source == "shipped"}
    assert lesson.checkpoints and set(lesson.checkpoints) <= shipped
    assert lesson.hint and lesson.explore_label and lesson.kind in KINDS


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_entry_poses_its_question_on_each_of_its_checkpoints(lesson):
    for name in lesson.checkpoints:
        checkpoint = load_model(name)
        problem = lesson.solve(checkpoint, default_text(checkpoint))
        assert not problem.error, (name, problem.error)
        assert isinstance(problem.answer, KINDS[lesson.kind]), name
        assert problem.question and problem.explanation and problem.evidence
        assert check(problem.answer, _right_response(problem.answer)).right, name
        for evidence in problem.evidence:
            plot_evidence(evidence)  # labels unique, shapes agree


def _right_response(answer):
    if isinstance(answer, CellsAnswer):
        return answer.cells
    if isinstance(answer, NumbersAnswer):
        return answer.values
    if isinstance(answer, NumberAnswer):
        return answer.value
    return answer.right


# ------------------------------------------------------------------ each answer comes from the model


def test_the_causal_mask_answer_is_the_models_mask_and_follows_the_input():
    long = causal_mask_problem(load_model("reversal-mha"), PI)
    assert long.answer.cells == frozenset((q, k) for q in range(GRID_TOKENS) for k in range(GRID_TOKENS) if k > q)
    short = causal_mask_problem(load_model("reversal-mha"), "3 1 4")
    assert short.answer.cells == frozenset({(0, 1), (0, 2), (1, 2)}) and short.answer.row_labels == ("0:3", "1:1", "2:4")
    words = causal_mask_problem(load_model("shakespeare-mha"), "to be or not to be")
    assert words.answer.col_labels[:3] == ("0:to", "1:␣", "2:be")


def test_a_gpt_without_a_causal_mask_has_no_cell_to_pick():
    from model.tokenizers import CharTokenizer

    tokenizer = CharTokenizer("abcdef")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, max_len=16, d_model=16, n_heads=2, n_layers=1, causal=False)
    problem = causal_mask_problem(LoadedCheckpoint(GPT(config).eval(), tokenizer, config), "abcd")
    assert not problem.error and problem.answer.cells == frozenset()


def test_the_halves_are_measured_and_an_untrained_model_is_at_chance_on_both():
    trained = chance_halves_problem(load_model("reversal-mha"), PI)
    first, second = trained.answer.values
    assert 0 <= first < 25 and second > 95
    other = chance_halves_problem(load_model("reversal-mla"), PI)
    assert other.answer.values != trained.answer.values
    shipped = load_model("reversal-mha")
    untrained = GPT(shipped.config).eval()  # same shape, fresh weights
    fresh = chance_halves_problem(LoadedCheckpoint(untrained, shipped.tokenizer, shipped.config, shipped.meta), PI)
    assert all(v < 40 for v in fresh.answer.values), fresh.answer.values


def test_the_mirror_heads_answer_is_the_argmax_of_its_weights_and_follows_the_input():
    from explain.trace import prepare_trace

    checkpoint = load_model("reversal-mha")
    problem = mirror_head_problem(checkpoint, PI)
    layer, head = (int(v) for _, v in problem.explore_params)
    query = 11  # n + n // 2 - 1 for n = 8
    weights = prepare_trace(checkpoint, PI).attention("self")[layer].weights[0, head, query, : query + 1]
    assert problem.answer.right == int(weights.argmax())
    assert len(problem.answer.options) == query + 1
    counted = mirror_head_problem(checkpoint, "0 1 2 3 4 5 6 7")
    assert counted.answer.options[counted.answer.right] != problem.answer.options[problem.answer.right]
    assert mirror_head_problem(checkpoint, "3 1 4").error.startswith("Type exactly 8 symbols")


def test_the_mirror_question_says_whether_the_head_mirrors_cleanly():
    assert "is its mirror head" in mirror_head_problem(load_model("reversal-mha"), PI).question
    follows = mirror_head_problem(load_model("reversal-rope"), PI).evidence[1].values
    question = mirror_head_problem(load_model("reversal-rope"), PI).question
    assert ("is its mirror head" in question) == (max(follows) >= CLEAN_MIRROR)
    assert f"on average {max(follows):.0%}" in question


@pytest.mark.parametrize("name", ["reversal-mha", "reversal-gqa", "reversal-mqa", "reversal-mla", "shakespeare-mqa"])
def test_the_cache_answer_is_the_models_own_cache_and_agrees_with_the_formula(name):
    checkpoint = load_model(name)
    config = checkpoint.config
    text = PI if name.startswith("reversal") else "to be or not"
    problem = cache_bytes_problem(checkpoint, text)
    tokens = len(checkpoint.tokenizer.encode(text)) + CACHE_NEW_TOKENS
    if config.attention_variant == "MLA":
        expected = latent_cache_bytes(config.n_layers, config.kv_latent_dim, config.mla_rope_dim, tokens)
    else:
        expected = cache_bytes(config.n_layers, config.n_kv_heads, config.d_head, tokens)
    assert problem.answer.value == expected and f"N = {tokens} tokens" in problem.question
    assert problem.evidence[0].values[-1] == expected  # the measured bar


def test_the_cache_answer_follows_the_input_length_and_stops_at_the_context():
    checkpoint = load_model("reversal-mqa")
    three, eight = cache_bytes_problem(checkpoint, "3 1 4"), cache_bytes_problem(checkpoint, PI)
    assert three.answer.value * 12 == eight.answer.value * 7  # 3 + 4 tokens against 8 + 4
    full = cache_bytes_problem(checkpoint, " ".join(["1"] * checkpoint.config.max_len))
    assert f"N = {checkpoint.config.max_len} tokens" in full.question


@pytest.mark.parametrize("solve", [causal_mask_problem, chance_halves_problem, mirror_head_problem,
                                   cache_bytes_problem])
def test_refusals_say_why(solve):
    dates = solve(load_model("dates"), "25 december 2023")
    assert dates.error and dates.answer is None
    if solve in (causal_mask_problem, cache_bytes_problem):
        empty = solve(load_model("reversal-mha"), "")
        assert "empty" in empty.error
        unknown = solve(load_model("reversal-mha"), "3 x 4")
        assert "only knows" in unknown.error


# ------------------------------------------------------------------ check, parse_number, answer_text


def test_check_says_what_is_wrong_but_not_what_is_right():
    cells = CellsAnswer(("0:a", "1:b"), ("0:a", "1:b"), frozenset({(0, 1)}))
    assert check(cells, frozenset({(0, 1)})).right
    wrong = check(cells, frozenset({(1, 0)}))
    assert not wrong.right and "1 of the cells" in wrong.message and "1 cell is missing" in wrong.message
    numbers = NumbersAnswer(("first", "second"), (10.0, 100.0), 5.0, "%")
    assert check(numbers, (12.0, 96.0)).right
    verdict = check(numbers, (30.0, 100.0))
    assert not verdict.right and "first is too high" in verdict.message and "100" not in verdict.message
    assert not check(numbers, (1.0,)).right
    assert check(NumberAnswer(24576.0, 0.0, "bytes"), 24576).right
    assert "too low" in check(NumberAnswer(24576.0, 0.0, "bytes"), 6144).message
    assert not check(NumberAnswer(1.0, 0.0), math.nan).right
    choice = ChoiceAnswer(("0:a", "1:b"), 1)
    assert check(choice, 1).right and not check(choice, 0).right and "Pick" in check(choice, 7).message


@pytest.mark.parametrize("typed, value", [("24576", 24576), ("24,576", 24576), ("24 576 bytes", 24576),
                                          ("9.5%", 9.5), ("1e3", 1000), (" 0.5 ", 0.5)])
def test_parse_number_reads_what_students_type(typed, value):
    assert parse_number(typed).value == value


@pytest.mark.parametrize("typed, message", [("lots", "is not a number"), ("", "Type a number"),
                                            ("nan", "not a finite number"), ("12..5", "is not a number"),
                                            ("-1", "out of range"), ("101", "out of range")])
def test_parse_number_says_why_it_refuses(typed, message):
    reading = parse_number(typed, 0, 100)
    assert reading.value is None and message in reading.error


def test_answer_text_names_the_answer():
    cells = CellsAnswer(("0:a", "1:b"), ("0:a", "1:b"), frozenset({(0, 1)}))
    assert "query `0:a`: keys `1:b`" in answer_text(cells)
    assert answer_text(NumberAnswer(24576.0, 0.0, "bytes")) == "24,576 bytes."
    assert "5 percentage points" in answer_text(NumbersAnswer(("a", "b"), (9.7, 100.0), 5.0, "%"))
    assert answer_text(ChoiceAnswer(("0:a", "1:b"), 1)) == "`1:b`."


# ------------------------------------------------------------------ figures


def test_matrix_evidence_outlines_its_marked_cells_and_refuses_mismatched_labels():
    evidence = MatrixEvidence("w", ("0:a", "1:a"), ("0:a", "1:a"), ((1.0, 0.0), (0.5, 0.5)), "weight",
                              frozenset({(0, 1)}))
    fig = plot_evidence(evidence)
    outlines = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(outlines) == 1 and outlines[0].x0 == 0.5 and outlines[0].y0 == -0.5
    assert list(fig.data[-1].y) == ["0:a", "1:a"]
    with pytest.raises(ValueError, match="labels"):
        plot_evidence(MatrixEvidence("w", ("0:a",), ("0:a", "1:a"), ((1.0, 0.0), (0.5, 0.5)), "weight"))


def test_bars_evidence_prints_values_and_units():
    fig = plot_evidence(BarsEvidence("bytes", ("MHA", "MQA"), (24576.0, 6144.0), "bytes", "bytes"))
    assert list(fig.data[0].text) == ["24,576", "6,144"] and "bytes" in fig.layout.yaxis.title.text


def test_problems_are_frozen_records_the_same_for_the_same_question():
    problem = causal_mask_problem(load_model("reversal-mha"), PI)
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.answer = None  # type: ignore[misc]
    assert problem == causal_mask_problem(load_model("reversal-mha"), PI)
