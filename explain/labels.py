"""How tokens are written on screen: one convention for every axis, table and hover text.

    display_token("\n") -> "⏎"      spaces, newlines and tabs become visible symbols
    token_labels(["a", "b"]) -> ["0:a", "1:b"]   "position:token", unique because plotly merges equal
                                                  category labels into one row
    row_labels(["7", "6"], ["6", "5"], 1) -> ["0:7 → 6", "1:6 → 5"]   a decoder's rows: what the row reads,
                                                  then what the model predicts from there (the next token)
    reversal_axis(3, 0.1).ticks -> ["0:a → b", "1:b → c", "2:c → c", "3:c → b", "4:b → a"]
                                                  an accuracy-by-position axis: the rows of one sequence's
                                                  shape, the token each position is scored on after the arrow

"a:b" is always position:token. A vocabulary entry (the KV page's next-token bars) is written
"Exit (id 143)", never with a colon.
Each convention has a one-line explanation beside it for the captions under the charts.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}

LABEL_NOTE = "Labels read position:token (position 0 is the first token)."
ROW_NOTE = ("A row label reads position:token → prediction: the token that row reads, then the token the model "
            "predicts next from there. A dashed line, where there is one, marks where your prompt ends and the "
            "model's own part begins.")
ACCURACY_POSITION_AXIS = "position p (reads token p, predicts token p + 1)"
VOCABULARY_NOTE = "Each bar is a token of the vocabulary: its text, then (id n), its number in the vocabulary."

SPECIAL_TOKENS = {
    "<unk>": "an unknown token: a character the model's vocabulary does not have",
    "<pad>": "padding: fills a shorter sequence in a batch; attention masks it out",
    "<s>": "the start token: a decoder's first input, before it has written anything",
    "</s>": "the end token: the model writes it when its answer is complete",
    "<bos>": "the start token: a decoder's first input, before it has written anything",
    "<eos>": "the end token: the model writes it when its answer is complete",
    "␣": "a space, drawn visibly",
    "⏎": "a line break (newline), drawn visibly",
    "⇥": "a tab, drawn visibly",
}


class TokenLabel(str):
    """An axis label that also knows its parts, so hover text can name them.

    It is the plain string "position:token" (or "position:token → prediction"), so every axis, selectbox
    and table takes it as it is; `hover` is the same thing written out for hover text: "12 '1'".
    """

    position: int
    token: str
    predicts: str | None
    from_prompt: bool

    def __new__(cls, position: int, token: str, predicts: str | None = None, from_prompt: bool = True) -> Self:
        text = f"{position}:{display_token(token)}"
        if predicts is not None:
            text += f" → {display_token(predicts)}"
        label = super().__new__(cls, text)
        label.position, label.token, label.predicts, label.from_prompt = position, token, predicts, from_prompt
        return label

    def __reduce__(self):
        return TokenLabel, (self.position, self.token, self.predicts, self.from_prompt)

    @property
    def hover(self) -> str:
        """The label as hover text names it: "12 '1'", with " (predicts '7')" on a decoder's rows."""
        text = f"{self.position} '{display_token(self.token)}'"
        return text if self.predicts is None else f"{text} (predicts '{display_token(self.predicts)}')"


def display_token(token: str) -> str:
    """A token as text a person can see: spaces, newlines and tabs become visible symbols."""
    if token in VISIBLE:
        return VISIBLE[token]
    return "".join(VISIBLE.get(c, c) for c in token) if token.isspace() else token


def token_labels(tokens: Iterable[str], prompt_length: int | None = None) -> list[str]:
    """Unique axis labels "position:token" (TokenLabel); tokens from `prompt_length` on are the model's."""
    return [TokenLabel(i, t, None, prompt_length is None or i < prompt_length) for i, t in enumerate(tokens)]


def row_labels(tokens: Sequence[str], predicts: Sequence[str], prompt_length: int) -> list[str]:
    """A decoder's row labels "position:token → prediction" (TokenLabel): what each row reads and predicts."""
    if len(tokens) != len(predicts):
        raise ValueError(f"{len(tokens)} tokens but {len(predicts)} predictions: need one prediction per row.")
    return [TokenLabel(i, t, p, i < prompt_length) for i, (t, p) in enumerate(zip(tokens, predicts))]


def prompt_rows(labels: Sequence[str]) -> int | None:
    """How many leading labels came from the prompt, when the model's own part follows; None otherwise."""
    flags = [getattr(label, "from_prompt", True) for label in labels]
    if all(flags) or not flags[0]:
        return None
    return flags.index(False)


def same_tokens(a: Sequence[str], b: Sequence[str]) -> bool:
    """True when two axes list the same tokens at the same positions (a row's prediction aside)."""
    def key(label: str) -> tuple:
        return (label.position, label.token) if isinstance(label, TokenLabel) else (str(label),)
    return len(a) == len(b) and all(key(x) == key(y) for x, y in zip(a, b))


def hover_name(label: str) -> str:
    """What hover text calls an axis entry: a TokenLabel's "12 '1'", any other label as it is."""
    return label.hover if isinstance(label, TokenLabel) else str(label)


def hover_text(row_noun: str, row: str, col_noun: str, col: str, value_name: str, value: float | None,
               digits: int = 3) -> str:
    """One cell's hover text: "query 12 '1' → key 2 '4': weight 0.935" (None: "masked")."""
    shown = "masked" if value is None else f"{value_name} {value:.{digits}f}"
    return f"{row_noun} {row} → {col_noun} {col}: {shown}"


def vocabulary_label(token_id: int, text: str) -> str:
    """A vocabulary entry on an axis: "Exit (id 143)" (VOCABULARY_NOTE says so under the chart)."""
    return f"{display_token(text)} (id {token_id})"


def special_token_note(tokens: Iterable[str]) -> str:
    """One line naming each special or invisible token in `tokens`, in order of first appearance ("" if none)."""
    seen: list[str] = []
    for token in tokens:
        shown = display_token(token)
        for part in ([shown] if shown in SPECIAL_TOKENS else [c for c in shown if c in SPECIAL_TOKENS]):
            if part not in seen:
                seen.append(part)
    return " · ".join(f"`{token}` is {SPECIAL_TOKENS[token]}" for token in seen)


@dataclass(frozen=True)
class PositionAxis:
    """The position axis of an accuracy-by-position chart: its tick labels and the one-line note under it."""

    ticks: tuple[str, ...]  # one per scored position
    note: str


def accuracy_ticks(sequence: Sequence[str]) -> tuple[str, ...]:
    """Ticks of every accuracy-by-position chart, one per scored position: "p:read → scored on".

    `sequence` is the shape of one whole sequence of the task, its varying parts as placeholders.
    Position p reads sequence[p] and is scored on sequence[p + 1], the next token, as in training
    (ACCURACY_POSITION_AXIS), so the ticks are the rows of that sequence written as row_labels are:
    a student reads off which token each position sees and which one it must predict.
    """
    if len(sequence) < 2:
        raise ValueError(f"a sequence of {len(sequence)} token(s) has no position to score: need at least 2.")
    return tuple(row_labels(sequence[:-1], sequence[1:], len(sequence)))


def reversal_sequence(n: int) -> tuple[str, ...]:
    """A reversal sequence with letters for its n random symbols: n = 3 -> a b c c b a."""
    if n < 2:
        raise ValueError(f"a reversal has at least 2 symbols (model.tasks.reversal), got n = {n}.")
    letters = [string.ascii_lowercase[i] if i < 26 else f"s{i}" for i in range(n)]
    return (*letters, *reversed(letters))


def reversal_axis(n: int, chance: float) -> PositionAxis:
    """The reversal's axis: 2n - 1 positions, the first n - 1 of which can only guess (chance = 1 / vocab)."""
    sequence = reversal_sequence(n)
    guessing = "Position 0" if n == 2 else f"Positions 0 to {n - 2}"
    note = (f"Ticks read position:symbol → the symbol it is scored on, letters standing for the random symbols of "
            f"each fresh sequence (`{' '.join(sequence)}`). {guessing} must predict a symbol not written yet, so "
            f"no model beats chance there (1 in {round(1 / chance)}); from position {n - 1} on, the answer is a "
            "symbol already read.")
    return PositionAxis(accuracy_ticks(sequence), note)


DATE_PLACEHOLDERS = {"%Y": "yyyy", "%m": "mm", "%d": "dd"}


def dates_axis(target_format: str, start_token: str, end_token: str) -> PositionAxis:
    """The dates task's axis: the decoder reads <s> then the date, and is scored on the date then </s>.

    target_format is the task's strftime pattern ("%Y-%m-%d" -> placeholders y, m, d).
    """
    pattern = target_format
    for directive, placeholder in DATE_PLACEHOLDERS.items():
        pattern = pattern.replace(directive, placeholder)
    start, end = display_token(start_token), display_token(end_token)
    note = (f"Ticks read position:character → the character it is scored on, in the shape of every answer: "
            f"y, m and d stand for the digits of the year, month and day, `{start}` starts the decoder's input and "
            f"`{end}` ends the answer. No position is at chance: the source date fixes every character (each "
            "position reads the true characters before it, as in training).")
    return PositionAxis(accuracy_ticks((start_token, *pattern, end_token)), note)
