"""Example inputs per task, so every page opens on something sensible without typing.

    reversal     n symbols, e.g. "3 1 4 1 5 9 2 6" (the digits of pi, wrapped into the vocabulary)
    dates        one date written in each format the model was trained on; default "25 december 2023"
    shakespeare  famous first lines; default "to be or not to be"
    other        the first few tokens of the vocabulary
"""

from __future__ import annotations

import datetime as dt

from model import LoadedCheckpoint
from model.tokenizers import CharTokenizer

PI_DIGITS = (3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5)
DATES_DEFAULT = "25 december 2023"
EXAMPLE_DAYS = (dt.date(2023, 12, 25), dt.date(1969, 7, 20), dt.date(1999, 12, 31), dt.date(2001, 9, 3))
SHAKESPEARE_LINES = (
    "to be or not to be",
    "To be, or not to be, that is the question",
    "O Romeo, Romeo, wherefore art thou Romeo?",
    "Now is the winter of our discontent",
    "Friends, Romans, countrymen, lend me your ears",
    "All the world's a stage, and all the men and women merely players",
    "What light through yonder window breaks?",
)


def task_examples(checkpoint: LoadedCheckpoint) -> list[str]:
    """Example inputs for this checkpoint's task; the first one is the default."""
    try:
        task = checkpoint.task
    except ValueError:  # an unknown task in meta: fall back to the vocabulary
        task = None
    name = getattr(task, "name", None)
    if name == "reversal" and checkpoint.tokenizer is not None:
        return _reversal_examples(checkpoint.tokenizer.tokens, task.n)
    if name == "dates":
        return _dates_examples(task.formats)
    if name == "shakespeare":
        return list(SHAKESPEARE_LINES)
    return [_vocabulary_example(checkpoint)]


def default_text(checkpoint: LoadedCheckpoint) -> str:
    """The input a page shows before the user types anything."""
    return task_examples(checkpoint)[0]


def _reversal_examples(symbols: list[str], n: int) -> list[str]:
    def pick(indices) -> str:
        return " ".join(symbols[i % len(symbols)] for i in indices)

    return [
        pick(PI_DIGITS[:n]),
        pick(range(n)),
        pick(range(n - 1, -1, -1)),
        pick([7] * n),
        pick(PI_DIGITS[n : 2 * n] if 2 * n <= len(PI_DIGITS) else range(1, 2 * n, 2)),
    ]


def _dates_examples(formats: tuple[str, ...]) -> list[str]:
    from model.tasks.dates import format_date  # the task's own renderer: English names, lower case

    examples = [format_date(day, fmt) for day in EXAMPLE_DAYS for fmt in formats]
    examples = list(dict.fromkeys(examples))
    if DATES_DEFAULT in examples:
        examples.remove(DATES_DEFAULT)
        examples.insert(0, DATES_DEFAULT)
    return examples


def _vocabulary_example(checkpoint: LoadedCheckpoint) -> str:
    tokenizer = checkpoint.tokenizer
    if tokenizer is None:
        return ""
    content = [t for i, t in enumerate(tokenizer.tokens)
               if i not in tokenizer.special_ids and i != tokenizer.unk_id and t.strip()]
    separator = "" if isinstance(tokenizer, CharTokenizer) else " "
    return separator.join(content[:8])
