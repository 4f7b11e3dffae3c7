"""Date normalisation: "monday, march 03, 1997" -> "1997-03-03" (encoder-decoder Transformer).

Legend: B batch, S source length, T target length (10 characters + 1), V vocab.

Each example is a random day between `start` and `end`, written (lower-cased) in one
of several human formats; the target is always ISO `%Y-%m-%d`. Month and weekday
names come from the English tables below, never from the machine's locale.

Source and target share one character-level tokenizer (one vocabulary, ids 0..2 are
<pad> <s> </s>): the digits appear on both sides and one table is simpler to show.
The vocabulary is derived from the formats, so it holds exactly the characters that
can occur.

    src      "3 1 . 0 5 . 2 0 0 1 <pad> ..."        right-padded to the longest in the batch
    tgt_in   "<s> 2 0 0 1 - 0 5 - 3 1"              decoder input (teacher forcing)
    tgt_out  "2 0 0 1 - 0 5 - 3 1 </s>"             what each decoder position must predict
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from model.tasks import (
    IGNORE_INDEX,
    TensorBatch,
    eval_mode,
    logits_of,
    model_device,
    model_max_len,
    task_params,
    token_loss,
)  # fmt: skip
from model.tokenizers import CharTokenizer

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

DEFAULT_FORMATS = (
    "%d %B %Y",
    "%B %d, %Y",
    "%A, %B %d, %Y",
    "%d %b %Y",
    "%b %d %Y",
    "%d.%m.%Y",
    "%A %d %B %Y",
)  # fmt: skip
TARGET_FORMAT = "%Y-%m-%d"

# Every directive: how to render it, and the characters it can produce.
_DIRECTIVES = {
    "d": (lambda d: f"{d.day:02d}", "0123456789"),
    "-d": (lambda d: str(d.day), "0123456789"),  # GNU-style unpadded day ("3"), not in the defaults
    "m": (lambda d: f"{d.month:02d}", "0123456789"),
    "Y": (lambda d: f"{d.year:04d}", "0123456789"),
    "B": (lambda d: MONTHS[d.month - 1], "".join(MONTHS)),
    "b": (lambda d: MONTHS[d.month - 1][:3], "".join(m[:3] for m in MONTHS)),
    "A": (lambda d: WEEKDAYS[d.weekday()], "".join(WEEKDAYS)),
}


def _parse_format(fmt: str) -> list[tuple[bool, str]]:
    """Split a format into (is_directive, text) parts; ValueError on unsupported directives."""
    parts, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1 : i + 3] if fmt[i + 1 : i + 2] == "-" else fmt[i + 1 : i + 2]
            if code not in _DIRECTIVES:
                raise ValueError(
                    f"unsupported directive %{code} in date format {fmt!r}; use one of "
                    f"{', '.join('%' + c for c in _DIRECTIVES)}."
                )
            parts.append((True, code))
            i += 1 + len(code)
        else:
            parts.append((False, fmt[i].lower()))
            i += 1
    return parts


def format_date(day: dt.date, fmt: str) -> str:
    """Render a date with our English tables, lower-cased (locale-independent strftime)."""
    return "".join(_DIRECTIVES[t][0](day) if is_code else t for is_code, t in _parse_format(fmt))


def format_chars(fmt: str) -> set[str]:
    """Every character that format can produce."""
    return {c for is_code, t in _parse_format(fmt) for c in (_DIRECTIVES[t][1] if is_code else t)}


def format_max_len(fmt: str) -> int:
    """Longest string that format can produce."""
    longest = {"d": 2, "-d": 2, "m": 2, "Y": 4, "B": max(map(len, MONTHS)), "b": 3, "A": max(map(len, WEEKDAYS))}
    return sum(longest[t] if is_code else 1 for is_code, t in _parse_format(fmt))


@dataclass
class Seq2SeqBatch(TensorBatch):
    """Source ids, decoder input and decoder target of a translation batch."""

    src: torch.Tensor  # (B, S) long, right-padded with pad_id
    tgt_in: torch.Tensor  # (B, T) long, starts with bos
    tgt_out: torch.Tensor  # (B, T) long, ends with eos; IGNORE_INDEX where padded
    fmt: torch.Tensor  # (B,) long, index of the format each source was written in


@dataclass(frozen=True)
class DatesTask:
    """Translate a date in a random human format into ISO form, character by character."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    start: str = "1900-01-01"
    end: str = "2099-12-31"
    name: ClassVar[str] = "dates"
    model_kind: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", tuple(self.formats))
        if not self.formats:
            raise ValueError("dates task needs at least one format.")
        for fmt in self.formats:
            _parse_format(fmt)
        try:
            first, last = dt.date.fromisoformat(self.start), dt.date.fromisoformat(self.end)
        except (TypeError, ValueError) as err:
            raise ValueError(f"dates start/end must be YYYY-MM-DD strings: {err}") from None
        if first > last:
            raise ValueError(f"dates start {self.start} is after end {self.end}.")

    @property
    def target_len(self) -> int:
        """Characters in every target ("yyyy-mm-dd")."""
        return format_max_len(TARGET_FORMAT)

    @property
    def required_max_len(self) -> int:
        """Longest source or decoder sequence (target + bos/eos)."""
        return max(max(format_max_len(f) for f in self.formats), self.target_len + 1)

    def describe(self) -> dict[str, Any]:
        """JSON description, the inverse of from_dict."""
        return {"name": self.name, "formats": list(self.formats), "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatesTask:
        """Rebuild from describe() output; ValueError when malformed."""
        params = task_params(cls, d)
        if "formats" in params and not (
            isinstance(params["formats"], (list, tuple)) and all(isinstance(f, str) for f in params["formats"])
        ):
            raise ValueError("dates task 'formats' must be a list of format strings.")
        return cls(**params)

    def make_tokenizer(self) -> CharTokenizer:
        """Shared source/target characters: everything the formats and ISO dates can produce."""
        chars = set().union(*(format_chars(f) for f in self.formats), format_chars(TARGET_FORMAT))
        return CharTokenizer(sorted(chars))

    def sample_examples(self, count: int, generator: torch.Generator) -> list[tuple[str, str, int]]:
        """(source, target, format index) triples of random days."""
        first = dt.date.fromisoformat(self.start).toordinal()
        span = dt.date.fromisoformat(self.end).toordinal() - first + 1
        days = torch.randint(0, span, (count,), generator=generator).tolist()
        fmts = torch.randint(0, len(self.formats), (count,), generator=generator).tolist()
        out = []
        for offset, f in zip(days, fmts):
            day = dt.date.fromordinal(first + offset)
            out.append((format_date(day, self.formats[f]), format_date(day, TARGET_FORMAT), f))
        return out

    def make_batch(self, examples: list[tuple[str, str, int]], tokenizer: CharTokenizer) -> Seq2SeqBatch:
        """Tensors for examples: sources right-padded, targets wrapped in bos/eos."""
        pad, bos, eos = tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
        srcs = [tokenizer.encode(s) for s, _, _ in examples]
        tgts = [tokenizer.encode(t) for _, t, _ in examples]
        S, T = max(map(len, srcs)), max(map(len, tgts)) + 1
        src = torch.full((len(examples), S), pad, dtype=torch.long)  # (B, S)
        tgt_in = torch.full((len(examples), T), pad, dtype=torch.long)  # (B, T)
        tgt_out = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)  # (B, T)
        for row, (s, t) in enumerate(zip(srcs, tgts)):
            src[row, : len(s)] = torch.tensor(s)
            tgt_in[row, : len(t) + 1] = torch.tensor([bos] + t)
            tgt_out[row, : len(t) + 1] = torch.tensor(t + [eos])
        fmt = torch.tensor([f for _, _, f in examples], dtype=torch.long)  # (B,)
        return Seq2SeqBatch(src=src, tgt_in=tgt_in, tgt_out=tgt_out, fmt=fmt)

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """A training batch of fresh random dates."""
        return self.make_batch(self.sample_examples(batch_size, generator), self._tokenizer())

    def _tokenizer(self) -> CharTokenizer:
        cached = self.__dict__.get("_tok")
        if cached is None:
            cached = self.make_tokenizer()
            object.__setattr__(self, "_tok", cached)
        return cached

    def loss(self, model: Any, batch: Seq2SeqBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of every target character and the final eos (teacher forcing)."""
        pad = self._tokenizer().pad_id
        logits = logits_of(model(batch.src, batch.tgt_in, src_pad_id=pad, tgt_pad_id=pad))  # (B, T, V)
        return token_loss(logits, batch.tgt_out)

    def translate(self, model: Any, src: torch.Tensor, tokenizer: CharTokenizer) -> list[str]:
        """Greedy decoding of a padded source batch; text up to the first eos."""
        out = model.generate(
            src, tokenizer.bos_id, tokenizer.eos_id, self.target_len + 1, use_cache=True, src_pad_id=tokenizer.pad_id
        )  # (B, T_out), starts with bos
        texts = []
        for row in out.tolist():
            row = row[1:]
            if tokenizer.eos_id in row:
                row = row[: row.index(tokenizer.eos_id)]
            texts.append(tokenizer.decode(row))
        return texts

    def evaluate(
        self, model: Any, num_sequences: int = 2000, seed: int = 0, device: str = "cpu", batch_size: int = 500
    ) -> dict[str, Any]:
        """Greedy translations of fresh dates: exact matches, per-character accuracy, per format."""
        tok = self._tokenizer()
        examples = self.sample_examples(num_sequences, torch.Generator().manual_seed(seed))
        preds: list[str] = []
        with eval_mode(model):
            for start in range(0, num_sequences, batch_size):
                batch = self.make_batch(examples[start : start + batch_size], tok)
                preds += self.translate(model, batch.src.to(device), tok)
        exact = [p == t for p, (_, t, _) in zip(preds, examples)]
        chars_right = sum(sum(a == b for a, b in zip(p, t)) for p, (_, t, _) in zip(preds, examples))
        chars_total = sum(len(t) for _, t, _ in examples)
        by_format = {}
        for i, fmt in enumerate(self.formats):
            hits = [e for e, (_, _, f) in zip(exact, examples) if f == i]
            by_format[fmt] = sum(hits) / len(hits) if hits else None
        return {
            "exact_match": sum(exact) / len(exact),
            "char_accuracy": chars_right / chars_total,
            "exact_match_by_format": by_format,
            "examples": [
                {"source": s, "target": t, "prediction": p} for (s, t, _), p in list(zip(examples, preds))[:8]
            ],
            "num_sequences": num_sequences,
        }

    def run(self, model: Any, tokenizer: CharTokenizer, text: str) -> str:
        """Translate one user-written date (lower-cased, stripped) greedily; ValueError when it cannot be read."""
        text = text.strip().lower()
        if not text:
            raise ValueError("type a date, e.g. 'march 3, 1997'.")
        unknown = tokenizer.unknown_in(text)
        if unknown:
            raise ValueError(
                f"these characters are not in the vocabulary: {' '.join(repr(c) for c in unknown)} "
                f"(allowed: {''.join(tokenizer.chars)!r})."
            )
        limit = model_max_len(model)
        if limit is not None and len(text) > limit:
            raise ValueError(f"the date is {len(text)} characters long; this model reads at most {limit}.")
        src = torch.tensor([tokenizer.encode(text)], dtype=torch.long, device=model_device(model))  # (1, S)
        with eval_mode(model):
            return self.translate(model, src, tokenizer)[0]
