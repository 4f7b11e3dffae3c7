"""What a lesson is, as data: a question about a real model and input, and how its answer is found.

A lesson never holds its answer. Its `solve` function reads the checkpoint and the input and returns a
`Problem`: the question with this instance's numbers filled in, the right answer (computed from the
model's own trace, cache or evaluation), the evidence a page draws after the check, and a sentence that
explains the evidence. Change the checkpoint or the input and `solve` gives a new right answer.

    CellsAnswer   pick cells of a matrix (rows x columns); right when the picked set equals `cells`
    NumberAnswer  type a number; right when within `tolerance` of `value` (absolute, in `unit`)
    ChoiceAnswer  pick one of `options` (a choice, or a token); right when it is `options[right]`

    MatrixEvidence  a labelled matrix (attention weights, a mask), drawn as a heatmap
    BarsEvidence    labelled bars (accuracies, bytes, entropies), drawn as a bar chart

`check` compares a response with the answer and says why it is wrong, never what is right: the page
shows the answer itself only after the second wrong try or when asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from model import LoadedCheckpoint

AnswerKind = Literal["cells", "number", "choice"]


@dataclass(frozen=True)
class CellsAnswer:
    """The right cells of a rows x columns grid, as (row, column) indices."""

    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    cells: frozenset[tuple[int, int]]
    row_noun: str = "query"
    col_noun: str = "key"


@dataclass(frozen=True)
class NumberAnswer:
    """The right number; a response within `tolerance` of it (absolute) counts as right."""

    value: float
    tolerance: float
    unit: str = ""


@dataclass(frozen=True)
class ChoiceAnswer:
    """One of `options` is right: `options[right]`."""

    options: tuple[str, ...]
    right: int


Answer = CellsAnswer | NumberAnswer | ChoiceAnswer


@dataclass(frozen=True)
class MatrixEvidence:
    """A labelled matrix to draw as a heatmap; `marked` cells are outlined (e.g. the right answer)."""

    title: str
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # (rows, columns)
    value_name: str
    marked: frozenset[tuple[int, int]] = frozenset()


@dataclass(frozen=True)
class BarsEvidence:
    """Labelled bars to draw as a bar chart."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    value_name: str
    unit: str = ""


Evidence = MatrixEvidence | BarsEvidence


@dataclass(frozen=True)
class Problem:
    """One instance of a lesson: its question, right answer, evidence and explanation.

    `error` is set (and the rest is empty) when this checkpoint or input cannot pose the question:
    the page shows it instead of the question.
    """

    question: str  # Markdown, with this instance's numbers filled in
    answer: Answer | None
    evidence: tuple[Evidence, ...] = ()
    explanation: str = ""  # Markdown, written from the evidence's numbers
    error: str = ""

    @staticmethod
    def refused(message: str) -> Problem:
        return Problem(question="", answer=None, error=message)


Solver = Callable[[LoadedCheckpoint, str], Problem]


@dataclass(frozen=True)
class Lesson:
    """A lesson entry of the catalog: data only, the right answer comes from `solve`."""

    slug: str  # stable URL key: /lessons?lesson=<slug>
    title: str
    kind: AnswerKind
    solve: Solver
    checkpoints: tuple[str, ...]  # shipped checkpoints it works on; the first is the default
    hint: str  # shown after a wrong answer: points the way, never gives the answer
    explore: str  # the page to explore further, as a path of app_lib.tour.TOUR ("pages/heatmaps.py")
    explore_label: str  # what the student does there ("Look at every head on the heatmaps page")


@dataclass(frozen=True)
class Verdict:
    right: bool
    message: str  # Markdown: why a response is wrong, or confirmation when right


def check(answer: Answer, response: frozenset[tuple[int, int]] | float | int) -> Verdict:
    """Compare a response with the answer: cells (a set of (row, column)), a number, or an option index."""
    if isinstance(answer, CellsAnswer):
        if not isinstance(response, frozenset):
            raise TypeError("a cells answer takes a frozenset of (row, column)")
        missing, extra = answer.cells - response, response - answer.cells
        if not missing and not extra:
            return Verdict(True, f"Right: all {len(answer.cells)} cells, and no others.")
        parts = []
        if extra:
            parts.append(f"{len(extra)} of the cells you picked should not be picked")
        if missing:
            parts.append(f"{len(missing)} cells are missing")
        return Verdict(False, "Not yet: " + " and ".join(parts) + ".")
    if isinstance(answer, NumberAnswer):
        if isinstance(response, frozenset) or not math.isfinite(float(response)):
            return Verdict(False, "Enter a number.")
        if abs(float(response) - answer.value) <= answer.tolerance:
            return Verdict(True, "Right.")
        direction = "too high" if float(response) > answer.value else "too low"
        return Verdict(False, f"Not yet: your answer is {direction}.")
    if isinstance(response, frozenset) or not 0 <= int(response) < len(answer.options):
        return Verdict(False, "Pick one of the options.")
    if int(response) == answer.right:
        return Verdict(True, "Right.")
    return Verdict(False, "Not yet: that is not the one.")
