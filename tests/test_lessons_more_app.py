"""Lessons 5-8 and RoPE on the Lessons page (AppTest): each answered wrong then right on two checkpoints or
inputs, the check following the model and input (one case's right answer is wrong on the other), bad input."""

from __future__ import annotations

import pytest
from conftest import lesson_widget_key, open_page

from app_lib.checkpoints import load_model
from explain.lesson_catalog import find_lesson
from explain.lesson_types import CellsAnswer, ChoiceAnswer, Problem

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

PAGE = "pages/lessons.py"
TIMEOUT = 180  # the machine is shared and loaded
PI = "3 1 4 1 5 9 2 6"

PAIRS = {  # lesson: two (checkpoint, input) cases whose right answers differ
    "padding-mask": (("reversal-mha", PI), ("dates", "25.12.2023")),
    "cross-attention-alignment": (("dates", "25 december 2023"), ("dates", "monday, july 20, 1969")),
    "head-off": (("reversal-mha", PI), ("reversal-mqa", PI)),
    "scaling": (("reversal-mha", PI), ("reversal-mla", PI)),
    "rope-relative": (("reversal-rope", PI), ("reversal-rope", "3 1 4 1 5")),
}
CASES = [(slug, *case) for slug, pair in PAIRS.items() for case in pair] + [("rope-relative", "reversal-mla", PI)]


def open_lesson(slug: str, checkpoint: str, text: str):
    return open_page(PAGE, {"lesson": slug, "checkpoint": checkpoint, "text": text}, timeout=TIMEOUT)


def problem_for(slug: str, checkpoint: str, text: str) -> Problem:
    """The lesson's problem computed outside the app, from the model: what the page must agree with."""
    return find_lesson(slug).solve(load_model(checkpoint), text)


widget_key = lesson_widget_key


def enter(at, answer: CellsAnswer | ChoiceAnswer, response: frozenset[tuple[int, int]] | int):
    """Tick exactly these cells, or pick this option, then press Check."""
    if isinstance(answer, CellsAnswer):
        boxes = [b for b in at.checkbox if b.key and b.key.startswith("lesson::") and "::cell_" in b.key]
        assert len(boxes) == len(answer.row_labels) * len(answer.col_labels)
        for box in boxes:
            row, col = (int(part) for part in box.key.rsplit("cell_", 1)[1].split("_"))
            box.set_value((row, col) in response)
    else:
        at.radio(key=widget_key(at, "choice")).set_value(response)
    at.button(key=widget_key(at, "check")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def right_response(answer: CellsAnswer | ChoiceAnswer) -> frozenset[tuple[int, int]] | int:
    return answer.cells if isinstance(answer, CellsAnswer) else answer.right


def wrong_response(answer: CellsAnswer | ChoiceAnswer) -> frozenset[tuple[int, int]] | int:
    if isinstance(answer, CellsAnswer):
        return answer.cells - {min(answer.cells)} | {(0, 0)} if (0, 0) not in answer.cells else answer.cells - {(0, 0)}
    return (answer.right + 1) % len(answer.options)


@pytest.mark.parametrize("slug, checkpoint, text", CASES)
def test_wrong_gets_the_hint_then_right_gets_the_evidence(slug, checkpoint, text):
    lesson, problem = find_lesson(slug), problem_for(slug, checkpoint, text)
    at = open_lesson(slug, checkpoint, text)
    assert any(m.value == problem.question for m in at.main.markdown)
    assert not at.success and len(at.get("plotly_chart")) == 0  # nothing shown before a check
    enter(at, problem.answer, wrong_response(problem.answer))
    assert any(w.value.startswith("Not yet") for w in at.warning)
    assert any(lesson.hint[:40] in i.value for i in at.info) and len(at.get("plotly_chart")) == 0
    enter(at, problem.answer, right_response(problem.answer))
    assert at.success and at.success[0].value.startswith("Right")
    assert len(at.get("plotly_chart")) == len(problem.evidence)
    assert any(problem.explanation[:60] in m.value for m in at.main.markdown)
    assert not any(lesson.hint[:40] in i.value for i in at.info)


@pytest.mark.parametrize("slug", list(PAIRS))
def test_the_check_follows_the_model_and_the_input(slug):
    (first, second) = PAIRS[slug]
    answers = [problem_for(slug, *case).answer for case in (first, second)]
    assert right_response(answers[0]) != right_response(answers[1])
    at = open_lesson(slug, *second)
    enter(at, answers[1], right_response(answers[0]) if isinstance(answers[1], ChoiceAnswer) else
          frozenset(cell for cell in right_response(answers[0]) if cell[1] < len(answers[1].col_labels)
                    and cell[0] < len(answers[1].row_labels)))
    assert any(w.value.startswith("Not yet") for w in at.warning) and not at.success


@pytest.mark.parametrize("slug, checkpoint, text, message", [
    ("cross-attention-alignment", "dates", "hello!", "only knows the characters"),
    ("rope-relative", "reversal-rope", "3 1 banana", "only knows the symbols"),
    ("scaling", "reversal-mha", "3", "single key"),
    ("padding-mask", "reversal-mha", "3 1 x", "only knows the symbols"),
])
def test_bad_input_gets_a_clear_message_in_the_page(slug, checkpoint, text, message):
    at = open_lesson(slug, checkpoint, text)
    assert any(message in w.value for w in at.warning), [w.value for w in at.warning]
    assert not [w for w in (*at.checkbox, *at.radio, *at.button) if w.key and w.key.startswith("lesson::")]
    at.button(key=f"lesson_default::{slug}").click().run()  # "Use the example input"
    assert not at.exception and at.selectbox(key="checkpoint").value == checkpoint and widget_key(at, "check")


@pytest.mark.parametrize("slug, checkpoint", [("cross-attention-alignment", "reversal-mha"),
                                              ("rope-relative", "reversal-mha")])
def test_a_model_that_cannot_pose_the_lesson_gets_its_default_on_a_click(slug, checkpoint):
    at = open_lesson(slug, checkpoint, PI)
    assert any("written for" in w.value for w in at.warning)
    at.button(key=f"lesson_default::{slug}").click().run()
    assert not at.exception and at.selectbox(key="checkpoint").value == find_lesson(slug).checkpoints[0]
    assert widget_key(at, "check")
