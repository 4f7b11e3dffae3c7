"""The Lessons page's widgets: the lesson picker, a lesson's question and answer, Check, feedback, progress.

A lesson is posed on the sidebar's checkpoint and input (both in the URL, so a teacher's link
/lessons?lesson=causal-mask&checkpoint=reversal-mha&text=... fixes the model and the input). A shipped
checkpoint not in the lesson's list, or one whose `solve` refuses, gets the reason and a button that
opens the lesson's default checkpoint; a user's own model is tried, and `solve` decides.
After a check: right shows the evidence; wrong shows why and the lesson's hint; the answer is shown after
the second wrong try, on request, or always in the teacher view (?teacher=true).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import streamlit as st

from explain.inputs import code_span
from explain.lesson_catalog import LESSONS, find_lesson
from explain.lesson_types import (
    Answer,
    CellsAnswer,
    Lesson,
    NumberAnswer,
    NumbersAnswer,
    Problem,
    Response,
    answer_text,
    check,
    parse_number,
)
from viz.figures_lessons import plot_evidence

from .checkpoints import load_model, version_of
from .lesson_progress import QuestionProgress, progress, question, record_check, record_shown, report_csv, report_json
from .sidebar import select_checkpoint
from .state import Selection
from .tracing import traced
from .ui import chart, show_notes

LESSON_KEY, TEACHER_KEY, STUDENT_KEY = "lesson", "teacher", "lesson_student"
TRIES_BEFORE_ANSWER = 2


@st.cache_data(show_spinner="Asking the model...", max_entries=256)
def _solved(name: str, version: tuple, slug: str, text: str) -> Problem:
    return find_lesson(slug).solve(load_model(name), text)


def solved(lesson: Lesson, name: str, text: str) -> Problem:
    """The lesson's problem on a listed checkpoint and input, cached per (checkpoint version, lesson, text)."""
    return _solved(name, version_of(name), lesson.slug, text)


def lesson_url(slug: str, checkpoint: str, text: str) -> str:
    """The page-relative link that reopens a question: its lesson, model and input."""
    return "/lessons?" + urlencode({LESSON_KEY: slug, "checkpoint": checkpoint, "text": text})


def pick_lesson() -> Lesson:
    """The lesson picker, kept in the URL as ?lesson=<slug>; an unknown slug gets an error listing the lessons.

    Not a bound widget: a bound selectbox writes its displayed title into the URL, and the link must hold the
    stable slug. The link decides on the page's first run in a session; the picker writes the URL back.
    """
    slugs = [lesson.slug for lesson in LESSONS]
    raw = st.query_params.get(LESSON_KEY)
    if LESSON_KEY not in st.session_state and raw is not None:
        if raw in slugs:
            st.session_state[LESSON_KEY] = raw
        else:
            st.error(f"There is no lesson {code_span(raw[:80])}. The lessons are:\n\n"
                     + "\n".join(f"- {code_span(lesson.slug)}: {lesson.title}" for lesson in LESSONS)
                     + "\n\nShowing the first one.")
    titles = {lesson.slug: f"{number}. {lesson.title}" for number, lesson in enumerate(LESSONS, start=1)}
    slug = st.selectbox("Lesson", slugs, format_func=titles.get, key=LESSON_KEY)
    st.query_params[LESSON_KEY] = slug
    return find_lesson(slug)


def teacher_toggle() -> bool:
    """The teacher view's toggle, bound to ?teacher=true; a link's ?teacher=1 turns it on too."""
    raw = st.query_params.get(TEACHER_KEY)  # read first: binding the widget rewrites a value it cannot take
    if raw == "1" and TEACHER_KEY not in st.session_state:
        st.session_state[TEACHER_KEY] = True
    on = st.toggle("Teacher view: show the answers", key=TEACHER_KEY, bind="query-params",
                   help="For the projector: every answer and its evidence at once. In the link as ?teacher=true.")
    if raw is not None and raw.lower() not in ("true", "false", "1"):
        st.warning(f"The link asked for teacher = {code_span(raw[:80])}, which is not true or false; the teacher "
                   f"view is {'on' if on else 'off'}.")
    return on


def lesson_section(lesson: Lesson, selection: Selection, teacher: bool) -> None:
    """The question on the sidebar's checkpoint and input, the answer widgets, Check, and the feedback."""
    name, text = selection.entry.name, selection.text
    if selection.entry.source == "shipped" and name not in lesson.checkpoints:
        _refuse(lesson, name, f"This lesson is written for {', '.join(code_span(c) for c in lesson.checkpoints)}, "
                              f"not {code_span(name)}.")
        return
    problem = solved(lesson, name, text)
    if problem.error or problem.answer is None:
        _refuse(lesson, name, problem.error or "This checkpoint cannot pose this lesson.")
        return
    # what the other pages say of this input (truncated to the context, not a date, unknown words); a refused
    # input has been explained by _refuse above
    show_notes([note for note in traced(name, text).notes if note.level != "error"])
    st.markdown(problem.question)
    record = question(lesson.slug, lesson.title, name, text)
    prefix = "lesson::" + hashlib.sha1(f"{lesson.slug}\0{name}\0{text}".encode()).hexdigest()[:12] + "::"
    response, error = answer_widgets(problem.answer, prefix)
    buttons = st.container(horizontal=True)  # side by side, each as wide as its label
    if buttons.button("Check", key=prefix + "check", type="primary", icon=":material/check:"):
        if error:
            st.error(error)
        else:
            record = record_check(record, check(problem.answer, response))
    if buttons.button("Show the answer", key=prefix + "show", icon=":material/visibility:"):
        record = record_shown(record)
    if not record.answered_right and record.wrong_tries >= TRIES_BEFORE_ANSWER:
        record = record_shown(record)
    _feedback(lesson, problem, record, teacher)
    if record.answered_right or record.answer_shown or teacher:
        _evidence(lesson, problem, name, text)
    st.caption(f"Link to this question (lesson, model and input): {code_span(lesson_url(lesson.slug, name, text))}")


def _refuse(lesson: Lesson, name: str, why: str) -> None:
    """Say why the lesson cannot be posed here; offer its default checkpoint, or on a checkpoint it is written
    for, that checkpoint's example input (the input was what it could not use)."""
    st.warning(why)
    target = name if name in lesson.checkpoints else lesson.checkpoints[0]
    label = f"Open this lesson on {target}" if target != name else "Use the example input"
    st.button(label, on_click=select_checkpoint, args=(target,), key=f"lesson_default::{lesson.slug}",
              icon=":material/swap_horiz:")


def answer_widgets(answer: Answer, prefix: str) -> tuple[Response | None, str]:
    """The widgets for this kind of answer; (the response, "") or (None, why it cannot be checked)."""
    if isinstance(answer, CellsAnswer):
        return _cells(answer, prefix), ""
    if isinstance(answer, NumbersAnswer):
        columns = st.columns(len(answer.names))
        readings = [parse_number(column.text_input(f"{name} ({answer.unit})", key=f"{prefix}number_{i}"),
                                 answer.minimum, answer.maximum)
                    for i, (column, name) in enumerate(zip(columns, answer.names))]
        errors = [f"{name}: {r.error}" for name, r in zip(answer.names, readings) if r.error]
        return (None, " ".join(errors)) if errors else (tuple(r.value for r in readings), "")
    if isinstance(answer, NumberAnswer):
        reading = parse_number(st.text_input(f"Your answer ({answer.unit})", key=prefix + "number"),
                               answer.minimum, answer.maximum)
        return reading.value, reading.error
    picked = st.radio("Your answer", range(len(answer.options)), format_func=lambda i: answer.options[i],
                      index=None, horizontal=True, key=prefix + "choice")
    return (None, "Pick one of the options first.") if picked is None else (picked, "")


def _cells(answer: CellsAnswer, prefix: str) -> frozenset[tuple[int, int]]:
    """A grid of checkboxes: a row per row label, a column per column label; the ticked (row, column) cells."""
    widths = [2] + [1] * len(answer.col_labels)
    header = st.columns(widths, vertical_alignment="bottom")
    header[0].caption(f"{answer.row_noun} ↓  {answer.col_noun} →")
    for column, label in zip(header[1:], answer.col_labels):
        column.markdown(code_span(label))
    picked = set()
    for r, row_label in enumerate(answer.row_labels):
        columns = st.columns(widths, vertical_alignment="center")
        columns[0].markdown(code_span(row_label))
        for c, (column, col_label) in enumerate(zip(columns[1:], answer.col_labels)):
            if column.checkbox(f"{answer.row_noun} {row_label}, {answer.col_noun} {col_label}",
                               key=f"{prefix}cell_{r}_{c}", label_visibility="collapsed"):
                picked.add((r, c))
    return frozenset(picked)


def _feedback(lesson: Lesson, problem: Problem, record: QuestionProgress, teacher: bool) -> None:
    """The latest verdict; after a wrong one the hint; the answer once shown (or in the teacher view)."""
    if record.last is not None:
        (st.success if record.last.right else st.warning)(record.last.message)
    if record.last is not None and not record.last.right and not record.answered_right:
        st.info(f"**Hint.** {lesson.hint}")
    if (record.answer_shown or teacher) and not record.answered_right:
        why = "teacher view" if teacher and not record.answer_shown else (
            f"after {TRIES_BEFORE_ANSWER} tries" if record.wrong_tries >= TRIES_BEFORE_ANSWER else "as asked")
        st.markdown(f"**The answer** ({why}): {answer_text(problem.answer)}")


def _evidence(lesson: Lesson, problem: Problem, name: str, text: str) -> None:
    """What the model's own numbers show, the sentence that explains them, and where to explore further."""
    st.subheader("Why: the model's own numbers")
    for index, evidence in enumerate(problem.evidence):
        chart(plot_evidence(evidence), f"lesson_{lesson.slug}_{index}")
    st.markdown(problem.explanation)
    st.page_link(lesson.explore, label=lesson.explore_label, icon=":material/arrow_forward:",
                 query_params={"checkpoint": name, "text": text} | dict(problem.explore_params))


def progress_section() -> None:
    """The questions asked in this session, and the report as CSV and JSON downloads."""
    st.subheader("Your progress")
    records = list(progress().values())
    if not records:
        st.caption("Nothing answered yet: your checks in this browser tab are listed here, to download for your "
                   "teacher. A reload starts afresh.")
        return
    right = sum(r.answered_right for r in records)
    st.markdown(f"Answered right: **{right} of {len(records)}** questions asked.")
    st.dataframe([{"lesson": r.title, "checkpoint": r.checkpoint, "input": r.input, "checks": r.attempts,
                   "right": "yes" if r.answered_right else "no", "answer shown": "yes" if r.answer_shown else "no"}
                  for r in records], hide_index=True, width="stretch")
    student = st.text_input("Your name, for the report (optional)", key=STUDENT_KEY, max_chars=80)
    downloads = st.container(horizontal=True)
    downloads.download_button("Download the report (CSV)", report_csv(records, student), file_name="lessons-report.csv",
                         mime="text/csv", icon=":material/download:", on_click="ignore")
    downloads.download_button("Download the report (JSON)", report_json(records, student),
                                 file_name="lessons-report.json", mime="application/json",
                                 icon=":material/download:", on_click="ignore")
