"""The Lessons page through AppTest: each lesson answered right and wrong on two checkpoints or inputs, hints,
the answer after two wrong tries, the teacher view, bad input, and the progress report."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import lesson_widget_key, open_page, save_tiny_user_models

from app_lib.checkpoints import load_model
from app_lib.lesson_progress import PROGRESS_KEY, report_csv, report_json
from explain.lesson_catalog import find_lesson
from explain.lesson_types import CellsAnswer, ChoiceAnswer, NumberAnswer, NumbersAnswer, Problem

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

PAGE = "pages/lessons.py"
TIMEOUT = 180  # the machine is shared and loaded


def open_lesson(query: dict[str, str]):
    return open_page(PAGE, query, timeout=TIMEOUT)


def problem_for(slug: str, checkpoint: str, text: str) -> Problem:
    """The lesson's problem computed outside the app: what the page must agree with."""
    return find_lesson(slug).solve(load_model(checkpoint), text)


widget_key = lesson_widget_key


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
    ("chance-halves", "reversal-mha", "3 1 4 1 5 9 2 6"),
    ("chance-halves", "reversal-mla", "3 1 4 1 5 9 2 6"),
    ("mirror-head", "reversal-mha", "3 1 4 1 5 9 2 6"),
    ("mirror-head", "reversal-gqa", "0 1 2 3 4 5 6 7"),
    ("cache-bytes", "reversal-mqa", "3 1 4 1 5 9 2 6"),
    ("cache-bytes", "reversal-mla", "3 1 4"),
    ("cache-bytes", "shakespeare-mha", "to be or not"),
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
    assert any(w.value.startswith("Not yet") for w in at.warning)
    assert any(lesson.hint[:40] in i.value for i in at.info)
    assert not any(m.value.startswith("**The answer**") for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == 0
    press(at, "check")
    assert any(m.value.startswith("**The answer** (after 2 tries)") for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == len(problem.evidence)


def test_the_show_button_shows_the_answer_and_the_report_says_so():
    problem = problem_for("mirror-head", "reversal-mha", "3 1 4 1 5 9 2 6")
    at = open_lesson({"lesson": "mirror-head", "checkpoint": "reversal-mha", "text": "3 1 4 1 5 9 2 6"})
    press(at, "show")
    assert any(m.value.startswith("**The answer** (as asked)") and problem.answer.options[problem.answer.right]
               in m.value for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == len(problem.evidence)
    (record,) = at.session_state[PROGRESS_KEY].values()
    assert record.answer_shown and not record.answered_right and record.attempts == 0


@pytest.mark.parametrize("flag", ["true", "1"])
def test_the_teacher_view_shows_every_answer_without_a_check(flag):
    problem = problem_for("cache-bytes", "reversal-gqa", "3 1 4 1 5 9 2 6")
    at = open_lesson({"lesson": "cache-bytes", "checkpoint": "reversal-gqa", "text": "3 1 4 1 5 9 2 6",
                      "teacher": flag})
    assert at.toggle(key="teacher").value is True and not at.warning
    assert any(m.value.startswith("**The answer** (teacher view)") and f"{problem.answer.value:,.0f}" in m.value
               for m in at.main.markdown)
    assert len(at.get("plotly_chart")) == len(problem.evidence)
    assert not at.session_state[PROGRESS_KEY][next(iter(at.session_state[PROGRESS_KEY]))].answer_shown


def test_a_teacher_flag_that_is_no_switch_gets_a_note():
    at = open_lesson({"lesson": "causal-mask", "checkpoint": "reversal-mha", "teacher": "maybe"})
    assert any("teacher = `maybe`" in w.value for w in at.warning) and at.toggle(key="teacher").value is False
    assert not any(m.value.startswith("**The answer**") for m in at.main.markdown)


def test_an_unknown_lesson_in_the_link_gets_a_message_and_the_list():
    at = open_lesson({"lesson": "no-such-lesson", "checkpoint": "reversal-mha"})
    message = at.error[0].value
    assert "no-such-lesson" in message and all(slug in message for slug in
                                               ("causal-mask", "chance-halves", "mirror-head", "cache-bytes"))
    assert at.selectbox(key="lesson").value == "causal-mask" and at.header[0].value == "The causal mask"


@pytest.mark.parametrize("typed, expected", [("lots", "is not a number"), ("-5", "out of range"),
                                             ("", "Type a number first")])
def test_bad_numbers_get_a_message_and_do_not_count_as_a_try(typed, expected):
    at = open_lesson({"lesson": "cache-bytes", "checkpoint": "reversal-mha", "text": "3 1 4 1 5 9 2 6"})
    at.text_input(key=widget_key(at, "number")).input(typed)
    press(at, "check")
    assert any(expected in e.value for e in at.error) and not at.warning and not at.success
    assert all(r.attempts == 0 for r in at.session_state[PROGRESS_KEY].values())


def test_an_accuracy_above_100_is_out_of_range():
    at = open_lesson({"lesson": "chance-halves", "checkpoint": "reversal-mha"})
    at.text_input(key=widget_key(at, "number_0")).input("10")
    at.text_input(key=widget_key(at, "number_1")).input("150%")
    press(at, "check")
    assert any("second half" in e.value and "from 0 to 100" in e.value for e in at.error)


def test_a_choice_must_be_picked_before_the_check():
    at = open_lesson({"lesson": "mirror-head", "checkpoint": "reversal-mha"})
    press(at, "check")
    assert any("Pick one" in e.value for e in at.error)


def test_a_checkpoint_the_lesson_is_not_for_gets_its_default_on_a_click():
    at = open_lesson({"lesson": "chance-halves", "checkpoint": "shakespeare-mha"})
    assert any("written for" in w.value and "shakespeare-mha" in w.value for w in at.warning)
    at.button(key="lesson_default::chance-halves").click().run()
    assert not at.exception and at.selectbox(key="checkpoint").value == "reversal-mha"
    assert not at.warning and widget_key(at, "number_0")


def test_an_input_the_lesson_cannot_use_says_why():
    at = open_lesson({"lesson": "mirror-head", "checkpoint": "reversal-mha", "text": "3 1 4"})
    assert any("exactly 8 symbols" in w.value for w in at.warning)
    button = at.button(key="lesson_default::mirror-head")
    assert button.label == "Use the example input"
    button.click().run()
    assert not at.exception and at.text_input(key="text").value == "3 1 4 1 5 9 2 6" and not at.warning
    assert widget_key(at, "choice")


def test_an_encoder_decoder_cannot_pose_the_causal_mask_lesson():
    at = open_lesson({"lesson": "causal-mask", "checkpoint": "dates"})
    assert any("written for" in w.value for w in at.warning)
    assert at.button(key="lesson_default::causal-mask").label == "Open this lesson on reversal-mha"


def test_the_page_link_reopens_the_question_with_its_model_and_input():
    at = open_lesson({"lesson": "mirror-head", "checkpoint": "reversal-gqa", "text": "0 1 2 3 4 5 6 7"})
    link = next(c.value for c in at.caption if "Link to this question" in c.value)
    assert "/lessons?lesson=mirror-head&checkpoint=reversal-gqa&text=0+1+2+3+4+5+6+7" in link
    assert at.selectbox(key="checkpoint").value == "reversal-gqa" and at.text_input(key="text").value == \
        "0 1 2 3 4 5 6 7"


def test_the_progress_report_downloads_what_was_answered(monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        files[filename] = path_or_data.encode() if isinstance(path_or_data, str) else path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = open_lesson({"lesson": "causal-mask", "checkpoint": "reversal-mha", "text": "3 1 4 1 5 9 2 6"})
    press(answer(at, problem_for("causal-mask", "reversal-mha", "3 1 4 1 5 9 2 6"), right=True), "check")
    at.selectbox(key="lesson").set_value("chance-halves").run()
    press(answer(at, problem_for("chance-halves", "reversal-mha", "3 1 4 1 5 9 2 6"), right=False), "check")
    at.text_input(key="lesson_student").input("Ada").run()
    rows = list(csv.DictReader(io.StringIO(files["lessons-report.csv"].decode())))
    assert [(r["student"], r["lesson"], r["checkpoint"], r["attempts"], r["answered_right"]) for r in rows] == [
        ("Ada", "causal-mask", "reversal-mha", "1", "True"), ("Ada", "chance-halves", "reversal-mha", "1", "False")]
    report = json.loads(files["lessons-report.json"])
    assert report["student"] == "Ada" and report["answered_right"] == 1
    assert [q["lesson"] for q in report["questions"]] == ["causal-mask", "chance-halves"]
    assert report["questions"][0]["input"] == "3 1 4 1 5 9 2 6"
    records = list(at.session_state[PROGRESS_KEY].values())
    assert report_csv(records, "Ada") == files["lessons-report.csv"].decode()
    assert json.loads(report_json(records, "Ada")) == report


def test_a_users_own_model_is_asked_when_the_lesson_can_use_it(tmp_path, monkeypatch):
    save_tiny_user_models(tmp_path)
    monkeypatch.setenv("TP_USER_MODELS", str(tmp_path))
    words = open_lesson({"lesson": "causal-mask", "checkpoint": "user/tiny-words", "text": "to be or not"})
    assert not words.warning and widget_key(words, "cell_0_1")
    dates = open_lesson({"lesson": "cache-bytes", "checkpoint": "user/tiny-dates"})
    assert any("needs a GPT" in w.value for w in dates.warning)
    assert dates.button(key="lesson_default::cache-bytes").label == "Open this lesson on reversal-mha"


def test_presentation_mode_restyles_the_evidence():
    at = open_lesson({"lesson": "chance-halves", "checkpoint": "reversal-mha", "teacher": "true", "present": "true"})
    figures = [json.loads(element.proto.spec) for element in at.get("plotly_chart")]
    assert len(figures) == 2
    assert all(f["layout"]["height"] <= 720 and f["layout"]["font"]["size"] >= 18 for f in figures)


def test_the_inputs_notes_show_above_the_question():
    """The input's warnings, as on the other pages: a non-date on the dates model, a text past the context."""
    at = open_lesson({"lesson": "cross-attention-alignment", "checkpoint": "dates", "text": "hello"})
    assert any("not a date" in w.value for w in at.warning)
    at = open_lesson({"lesson": "causal-mask", "checkpoint": "shakespeare-mha", "text": " ".join(["love"] * 400)})
    assert any("context is 128" in w.value for w in at.warning)
