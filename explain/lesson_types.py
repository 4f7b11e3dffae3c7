"""What a lesson is, as data: a question about a real model and input, and how its answer is found.

A lesson never holds its answer. Its `solve` function reads the checkpoint and the input and returns a
`Problem`: the question with this instance's numbers filled in, the right answer (computed from the
model's own trace, cache or evaluation), the evidence a page draws after the check, and a sentence that
explains the evidence. Change the checkpoint or the input and `solve` gives a new right answer.

    CellsAnswer   pick cells of a matrix (rows x columns); right when the picked set equals `cells`
    NumberAnswer  type a number; right when within `tolerance` of `value` (absolute, in `unit`)
    NumbersAnswer type several named numbers (e.g. two accuracies); right when each is within `tolerance`
    ChoiceAnswer  pick one of `options` (a choice, or a token); right when it is `options[right]`

    MatrixEvidence  a labelled matrix (attention weights, a mask), drawn as a heatmap
    BarsEvidence    labelled bars (accuracies, bytes, entropies), drawn as a bar chart

`check` compares a response with the answer and says why it is wrong, never what is right: the page
shows the answer itself (`answer_text`) only after the second wrong try or when asked. `parse_number`
reads what a student typed into a number field ("16,384", "9.5 %") or says why it is not a number in range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from model import LoadedCheckpoint

from .inputs import code_span

AnswerKind = Literal["cells", "number", "numbers", "choice"]


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
    minimum: float | None = None  # a response outside [minimum, maximum] is refused as input, not judged
    maximum: float | None = None


@dataclass(frozen=True)
class NumbersAnswer:
    """Several named numbers, e.g. ("first half", "second half"); each within `tolerance` of its value."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    tolerance: float
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values) or not self.names:
            raise ValueError(f"{len(self.names)} names for {len(self.values)} values: give one name per value.")


@dataclass(frozen=True)
class ChoiceAnswer:
    """One of `options` is right: `options[right]`."""

    options: tuple[str, ...]
    right: int


Answer = CellsAnswer | NumberAnswer | NumbersAnswer | ChoiceAnswer


@dataclass(frozen=True)
class MatrixEvidence:
    """A labelled matrix to draw as a heatmap; `marked` cells are outlined (e.g. the right answer)."""

    title: str
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # (rows, columns)
    value_name: str
    marked: frozenset[tuple[int, int]] = frozenset()
    row_noun: str = "query"  # what hover text calls a row and a column
    col_noun: str = "key"


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
    explore_params: tuple[tuple[str, str], ...] = ()  # URL parameters for the explore page, e.g. (("layer", "0"),)

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


Response = frozenset[tuple[int, int]] | float | int | tuple[float, ...]


def check(answer: Answer, response: Response) -> Verdict:
    """Compare a response with the answer: cells (a set of (row, column)), a number, numbers (a tuple, in the
    order of `names`), or an option index."""
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
            parts.append(f"{len(missing)} {'cell is' if len(missing) == 1 else 'cells are'} missing")
        return Verdict(False, "Not yet: " + " and ".join(parts) + ".")
    if isinstance(answer, NumbersAnswer):
        if not isinstance(response, tuple) or len(response) != len(answer.values):
            return Verdict(False, f"Enter {len(answer.values)} numbers: {', '.join(answer.names)}.")
        if not all(math.isfinite(float(r)) for r in response):
            return Verdict(False, "Enter a number in each field.")
        off = [f"{name} is {'too high' if float(r) > v else 'too low'}"
               for name, r, v in zip(answer.names, response, answer.values) if abs(float(r) - v) > answer.tolerance]
        if not off:
            return Verdict(True, f"Right: every number is within {_tolerance(answer.tolerance, answer.unit)}.")
        return Verdict(False, "Not yet: " + " and ".join(off) + ".")
    if isinstance(answer, NumberAnswer):
        if isinstance(response, (frozenset, tuple)) or not math.isfinite(float(response)):
            return Verdict(False, "Enter a number.")
        if abs(float(response) - answer.value) <= answer.tolerance:
            return Verdict(True, "Right.")
        direction = "too high" if float(response) > answer.value else "too low"
        return Verdict(False, f"Not yet: your answer is {direction}.")
    if isinstance(response, (frozenset, tuple)) or not 0 <= int(response) < len(answer.options):
        return Verdict(False, "Pick one of the options.")
    if int(response) == answer.right:
        return Verdict(True, "Right.")
    return Verdict(False, "Not yet: that is not the one.")


def answer_text(answer: Answer) -> str:
    """The right answer in words (Markdown), for the page to show after two wrong tries or when asked."""
    if isinstance(answer, CellsAnswer):
        if not answer.cells:
            return "No cell at all."
        rows = sorted({r for r, _ in answer.cells})
        lines = [f"{answer.row_noun} {code_span(answer.row_labels[r])}: {answer.col_noun}s "
                 + ", ".join(code_span(answer.col_labels[c]) for c in sorted(c for rr, c in answer.cells if rr == r))
                 for r in rows]
        return f"{len(answer.cells)} cells:\n\n" + "\n".join(f"- {line}" for line in lines)
    if isinstance(answer, NumbersAnswer):
        return ", ".join(f"{name}: {_amount(v, answer.unit)}" for name, v in zip(answer.names, answer.values)) + \
            f" (within {_tolerance(answer.tolerance, answer.unit)} counts as right)."
    if isinstance(answer, NumberAnswer):
        within = f" (within {_tolerance(answer.tolerance, answer.unit)} counts as right)" if answer.tolerance else ""
        return _amount(answer.value, answer.unit) + within + "."
    return code_span(answer.options[answer.right]) + "."


@dataclass(frozen=True)
class NumberReading:
    """What a number field held: the number, or `error` (Markdown) saying why it is not one in range."""

    value: float | None
    error: str = ""


def parse_number(text: str, minimum: float | None = None, maximum: float | None = None) -> NumberReading:
    """A typed number: thousands separators (",", "_", spaces) and a trailing unit word or % are allowed."""
    cleaned = re.sub(r"[\s,_]", "", text or "")
    cleaned = re.sub(r"(?<=[0-9.])(%|[A-Za-z]+)$", "", cleaned)  # "9.5%", "16384bytes"
    if not cleaned:
        return NumberReading(None, "Type a number first.")
    try:
        value = float(cleaned)
    except ValueError:
        return NumberReading(None, f"{code_span(text[:40])} is not a number: type digits, such as 12 or 0.5.")
    if not math.isfinite(value):
        return NumberReading(None, f"{code_span(text[:40])} is not a finite number.")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"{minimum:g}"
        high = "" if maximum is None else f"{maximum:g}"
        span = f"from {low} to {high}" if low and high else (f"at least {low}" if low else f"at most {high}")
        return NumberReading(None, f"{value:g} is out of range: the answer is a number {span}.")
    return NumberReading(value)


def _amount(value: float, unit: str) -> str:
    """A number as the page writes it: whole numbers with thousands separators, others to 3 digits."""
    shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
    return f"{shown} {unit}".strip() if unit != "%" else f"{shown}%"


def _tolerance(tolerance: float, unit: str) -> str:
    """A tolerance in words: a percentage's is in percentage points ("5 percentage points"), not a percent."""
    return f"{tolerance:g} percentage points" if unit == "%" else _amount(tolerance, unit)
