"""The Lessons page through AppTest: each lesson answered right and wrong on two checkpoints or inputs, hints,
the answer after two wrong tries, the teacher view, bad input, and the progress report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app_lib.checkpoints import load_model
from app_lib.lesson_progress import PROGRESS_KEY, report_csv, report_json
from explain.lesson_catalog import find_lesson
from explain.lesson_types import CellsAnswer, ChoiceAnswer, NumberAnswer, NumbersAnswer, Problem

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/lessons.py"
TIMEOUT = 180  # the machine is shared and loaded


def open_lesson(query: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def problem_for(slug: str, checkpoint: str, text: str) -> Problem:
    """The lesson's problem computed outside the app: what the page must agree with."""
    return find_lesson(slug).solve(load_model(checkpoint), text)


def widget_key(at, suffix: str) -> str:
    """The key of this question's widget ending in `suffix` (keys carry a per-question prefix)."""
    keys = [w.key for w in at.main if getattr(w, "key", None) and w.key.startswith("lesson::")]
    return next(k for k in keys if k.endswith("::" + suffix))


def tick_cells(at, cells: frozenset[tuple[int, int]]):
    for box in at.checkbox:
        if box.key and box.key.startswith("lesson::") and "::cell_" in box.key:
            row, col = (int(part) for part in box.key.rsplit("cell_", 1)[1].split("_"))
            box.set_value((row, col) in cells)
    return at


def answer(at, problem: Problem, right: bool):
    """Enter the right answer (from the model) or a wrong one, for any kind of answer."""
    given = problem.answer
    if isinstance(given, CellsAnswer):
        cells = given.cells if right else given.cells - {min(given.cells)} | {(0, 0)}
        tick_cells(at, cells)
    elif isinstance(given, NumbersAnswer):
        for i, value in enumerate(given.values):
            shown = value if right else (value + 3 * given.tolerance + 20 if value < 50 else value - 50)
            at.text_input(key=widget_key(at, f"number_{i}")).input(f"{shown:.4f}")
    elif isinstance(given, NumberAnswer):
        at.text_input(key=widget_key(at, "number")).input(f"{given.value:,.0f}" if right else f"{given.value * 2:.0f}")
    elif isinstance(given, ChoiceAnswer):
        pick = given.right if right else (given.right + 1) % len(given.options)
        at.radio(key=widget_key(at, "choice")).set_value(pick)
    return at


def press(at, name: str):
    at.button(key=widget_key(at, name)).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


CASES = [  # (lesson, checkpoint, input): two checkpoints or inputs per lesson
    ("causal-mask", "reversal-mha", "3 1 4 1 5 9 2 6"),
    ("causal-mask", "shakespeare-mha", "to be"),
]


@pytest.mark.parametrize("slug, checkpoint, text", CASES)
def test_a_right_answer_is_right_and_shows_the_evidence(slug, checkpoint, text):
    problem = problem_for(slug, checkpoint, text)
    at = open_lesson({"lesson": slug, "checkpoint": checkpoint, "text": text})
    assert not at.success and len(at.get("plotly_chart")) == 0  # nothing shown before a check
    press(answer(at, problem, right=True), "check")
    assert [s.value for s in at.success] and at.success[0].value.startswith("Right")
    assert len(at.get("plotly_chart")) == len(problem.evidence)
    assert any(problem.explanation[:60] in m.value for m in at.main.markdown)
    assert not any("Hint" in i.value for i in at.info)


@pytest.mark.parametrize("slug, checkpoint, text", CASES)
def test_a_wrong_answer_gets_the_hint_then_the_answer_after_the_second_try(slug, checkpoint, text):
    lesson, problem = find_lesson(slug), problem_for(slug, checkpoint, text)
    at = open_lesson({"lesson": slug, "checkpoint": checkpoint, "text": text})
    press(answer(at, problem, right=False), "check")
    assert at.warning and at.warning[0].value.startswith("Not yet")
    assert any(lesson.hint[:40] in i.value for i in at.info)
    assert not any(m.value.startswith("**The answer**") for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == 0
    press(at, "check")
    assert any(m.value.startswith("**The answer** (after 2 tries)") for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == len(problem.evidence)
