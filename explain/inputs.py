"""Check what the user typed against a checkpoint: the ids the model will read, and notes to show.

Every problem becomes a `Note` a page can display, never an exception:

    empty input                         error: nothing to trace
    symbols / characters not known      error (reversal, dates: their tokenizers have no <unk>), naming them
    words not known (Shakespeare)       warning: traced as <unk>, and the words are listed
    longer than the model's context     warning: truncated to max_len tokens
    reversal without exactly n symbols  warning: traced as typed, without the model's answer
    dates model given a non-date        warning: traced anyway, the output is garbage

Notes are Markdown; user text in them is always inside a code span (see `code_span`), so
`<img src=x onerror=alert(1)>`, `$x$` or `**` show as typed and are never interpreted.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from model import LoadedCheckpoint
from model.tokenizers import CharTokenizer

NoteLevel = Literal["info", "warning", "error"]
Mode = Literal["read", "reverse", "translate"]
MAX_LISTED = 12  # unknown pieces named in a note


@dataclass(frozen=True)
class Note:
    """A message for the page: `level` picks st.info / st.warning / st.error."""

    level: NoteLevel
    message: str


@dataclass(frozen=True)
class ModelInput:
    """What the model will read (ids; None when the input is refused) and what to tell the user.

    mode: "read" traces the ids as they are; "reverse" traces the prompt plus the model's
    answer (reversal with exactly n symbols); "translate" runs the encoder-decoder.
    """

    ids: tuple[int, ...] | None
    notes: tuple[Note, ...]
    mode: Mode = "read"
    text: str = ""  # the text the ids came from, after normalisation (dates: lower-cased)

    @property
    def ok(self) -> bool:
        return self.ids is not None


def code_span(text: str) -> str:
    """`text` as a Markdown code span, safe for any content (backticks, $, <, newlines).

    Every CommonMark line ending (\\n, \\r, \\r\\n) becomes a space: block structure is parsed
    before code spans, so a line ending would let the text after it start a heading or an HTML block.
    """
    text = re.sub(r"\r\n?|\n", " ", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def listed(pieces: list[str]) -> str:
    """Pieces as comma-separated code spans of their repr (shows quotes and whitespace)."""
    shown = ", ".join(code_span(repr(p)) for p in pieces[:MAX_LISTED])
    return shown + (f" and {len(pieces) - MAX_LISTED} more" if len(pieces) > MAX_LISTED else "")


def task_of(checkpoint: LoadedCheckpoint):
    """The checkpoint's task, or None (bare model, or a task this code does not know)."""
    try:
        return checkpoint.task
    except (ValueError, TypeError, KeyError):
        return None


def read_input(checkpoint: LoadedCheckpoint, text: str) -> ModelInput:
    """Turn user text into the ids a checkpoint reads, with notes for everything unusual."""
    tokenizer = checkpoint.tokenizer
    text = (text or "").strip()
    if tokenizer is None:
        return _refuse("This checkpoint has no tokenizer, so it cannot read text.")
    if not text:
        return _refuse("The input is empty: type something, or pick an example in the sidebar.")
    task = task_of(checkpoint)
    name = getattr(task, "name", None)
    if name == "dates":
        text = text.lower()
    unknown = tokenizer.unknown_in(text)
    if unknown and tokenizer.unk_id is None:
        return _refuse(_unknown_message(checkpoint, unknown))
    notes: list[Note] = []
    if unknown:
        notes.append(Note("warning", f"Not in the model's vocabulary, so it reads them as "
                                     f"{code_span(tokenizer.id_to_token(tokenizer.unk_id))}: {listed(unknown)}."))
    ids = list(tokenizer.encode(text))
    if not ids:
        return _refuse("The input has no tokens the model can read: type some words.")
    mode: Mode = "translate" if checkpoint.architecture == "transformer" else "read"
    if name == "reversal":
        if len(ids) == task.n:
            mode = "reverse"
        else:
            notes.append(Note("warning", f"The reversal model was trained on exactly {task.n} symbols; you typed "
                                         f"{len(ids)}. Showing the model reading your symbols, without its answer."))
    if name == "dates":
        notes += _date_notes(task, text)
    limit = checkpoint.config.max_len
    if len(ids) > limit:
        notes.append(Note("warning", f"The input has {len(ids)} tokens but the model's context is {limit} "
                                     f"(max_len): only the first {limit} are shown."))
        ids = ids[:limit]
    return ModelInput(tuple(ids), tuple(notes), mode, text)


def _refuse(message: str) -> ModelInput:
    return ModelInput(None, (Note("error", message),))


def _unknown_message(checkpoint: LoadedCheckpoint, unknown: list[str]) -> str:
    tokenizer = checkpoint.tokenizer
    if isinstance(tokenizer, CharTokenizer):
        allowed = "".join(t for i, t in enumerate(tokenizer.tokens) if i not in tokenizer.special_ids)
        return (f"The model only knows the characters {code_span(allowed)}. "
                f"Not among them: {listed(unknown)}.")
    allowed = " ".join(tokenizer.tokens)
    return (f"The model only knows the symbols {code_span(allowed)}, separated by spaces. "
            f"Not among them: {listed(unknown)}.")


def _date_notes(task, text: str) -> list[Note]:
    """A warning when text is not a date written in one of the task's formats, or is out of range."""
    day = _parse_date(text, task.formats)
    if day is None:
        from model.tasks.dates import format_date

        shown = ", ".join(code_span(format_date(dt.date(2023, 12, 25), f)) for f in task.formats[:4])
        return [Note("warning", f"This is not a date in a format the model was trained on (such as {shown}). "
                                f"It is traced anyway, but the model's output is garbage: it has never seen "
                                f"input like this.")]
    if not dt.date.fromisoformat(task.start) <= day <= dt.date.fromisoformat(task.end):
        return [Note("warning", f"The model was trained on dates from {task.start} to {task.end}; "
                                f"this one is outside, so its answer may be wrong.")]
    return []


def _parse_date(text: str, formats: tuple[str, ...]) -> dt.date | None:
    """The date text spells in one of formats, exactly as the task writes it; None otherwise."""
    from model.tasks.dates import format_date

    for fmt in formats:
        try:
            day = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if format_date(day, fmt) == text:
            return day
    return None
