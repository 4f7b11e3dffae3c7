"""A student's lesson progress in this browser session, and the report a teacher collects (CSV or JSON).

One `QuestionProgress` per question asked: a lesson on one checkpoint and input. It lives in
st.session_state only (no logins: a reload starts afresh), so the page offers it as a download.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass

import streamlit as st

from explain.lesson_types import Verdict

PROGRESS_KEY = "_tp_lesson_progress"
REPORT_FIELDS = ("lesson", "title", "checkpoint", "input", "attempts", "answered_right", "answer_shown")


@dataclass(frozen=True)
class QuestionProgress:
    """How one question went: checks made, whether one was right, whether the answer was shown before."""

    lesson: str  # the lesson's slug
    title: str
    checkpoint: str
    input: str
    attempts: int = 0
    answered_right: bool = False
    answer_shown: bool = False  # shown (second wrong try, or asked) before a right answer
    last: Verdict | None = None  # the latest check's verdict, shown until the next check

    @property
    def wrong_tries(self) -> int:
        return self.attempts - (1 if self.answered_right else 0)


def question_id(lesson: str, checkpoint: str, text: str) -> str:
    """The key of one question: a lesson on one checkpoint and input."""
    return json.dumps([lesson, checkpoint, text])


def progress() -> dict[str, QuestionProgress]:
    """This session's progress, by question_id, in the order the questions were first seen."""
    return st.session_state.setdefault(PROGRESS_KEY, {})


def question(lesson: str, title: str, checkpoint: str, text: str) -> QuestionProgress:
    """The question's progress so far (a fresh record the first time it is asked)."""
    key = question_id(lesson, checkpoint, text)
    found = progress().get(key)
    if found is None:
        found = progress()[key] = QuestionProgress(lesson, title, checkpoint, text)
    return found


def record_check(record: QuestionProgress, verdict: Verdict) -> QuestionProgress:
    """Count a check; once right, a question stays right."""
    updated = dataclasses.replace(record, attempts=record.attempts + 1, last=verdict,
                                  answered_right=record.answered_right or verdict.right)
    progress()[question_id(record.lesson, record.checkpoint, record.input)] = updated
    return updated


def record_shown(record: QuestionProgress) -> QuestionProgress:
    """Note that the answer was shown (it counts only while the question is not yet answered right)."""
    if record.answered_right or record.answer_shown:
        return record
    updated = dataclasses.replace(record, answer_shown=True)
    progress()[question_id(record.lesson, record.checkpoint, record.input)] = updated
    return updated


def report_rows(records: list[QuestionProgress]) -> list[dict[str, str | int | bool]]:
    """One row per question asked, with the REPORT_FIELDS columns."""
    return [{name: getattr(record, name) for name in REPORT_FIELDS} for record in records]


def report_csv(records: list[QuestionProgress], student: str) -> str:
    """The report as CSV: a student column, then REPORT_FIELDS."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=("student",) + REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report_rows(records):
        writer.writerow({name: _cell(value) for name, value in ({"student": student} | row).items()})
    return out.getvalue()


def _cell(value: str | int | bool) -> str | int | bool:
    """A text cell a spreadsheet would run as a formula ("=...", "+...", "-...", "@...") is quoted with a '."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


def report_json(records: list[QuestionProgress], student: str) -> str:
    """The report as JSON: {"student": ..., "answered_right": n, "questions": [rows]}."""
    rows = report_rows(records)
    return json.dumps({"student": student, "answered_right": sum(r["answered_right"] for r in rows),
                       "questions": rows}, indent=2, ensure_ascii=False)
