"""Tokenizers: turn text into integer ids and back, one small class per task.

All three share the `Tokenizer` interface, so the app can show any of them the
same way:

    SymbolTokenizer  reversal     "4 1 7"        -> [4, 1, 7]            no specials
    CharTokenizer    dates        "3 may 1999"   -> [.., .., ..]         <pad> <s> </s>, no unk
    WordTokenizer    shakespeare  "To be, or"    -> ["To", " ", "be", ",", " ", "or"]   <unk>

`tokenize(text)` is always `[id_to_token(i) for i in encode(text)]`: the pieces
the model really sees (an unknown word shows as "<unk>"). `unknown_in(text)` lists
what the vocabulary lacks, so the app can say so instead of failing silently.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


class Tokenizer(ABC):
    """Shared interface: a vocabulary `tokens` (index = id) plus encode/decode."""

    type_name = ""  # the "type" key of to_dict()

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if not tokens:
            raise ValueError(f"{type(self).__name__}: the vocabulary is empty.")
        if not all(isinstance(t, str) and t for t in tokens):
            raise ValueError(f"{type(self).__name__}: every token must be a non-empty string.")
        duplicates = sorted({t for t, c in Counter(tokens).items() if c > 1})
        if duplicates:
            raise ValueError(f"{type(self).__name__}: duplicate tokens {duplicates}.")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        self.pad_id: int | None = None
        self.bos_id: int | None = None
        self.eos_id: int | None = None
        self.unk_id: int | None = None

    @property
    def tokens(self) -> list[str]:
        """The vocabulary; position i holds the string of id i."""
        return list(self._tokens)

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(self._tokens)

    @property
    def special_ids(self) -> set[int]:
        """Ids of pad/bos/eos (not unk: an unknown word is still content)."""
        return {i for i in (self.pad_id, self.bos_id, self.eos_id) if i is not None}

    def id_to_token(self, i: int) -> str:
        """The string of one id; ValueError when it is outside the vocabulary."""
        i = int(i)
        if not 0 <= i < len(self._tokens):
            raise ValueError(f"id {i} is outside the vocabulary (size {len(self._tokens)}).")
        return self._tokens[i]

    @abstractmethod
    def pieces(self, text: str) -> list[str]:
        """Split text into vocabulary-sized pieces, before any lookup."""

    def encode(self, text: str) -> list[int]:
        """Text to ids (no bos/eos added: tasks add the specials they need)."""
        pieces = self.pieces(text)
        if self.unk_id is None:
            unknown = self._unknown(pieces)
            if unknown:
                raise ValueError(self._unknown_message(unknown))
            return [self._index[p] for p in pieces]
        return [self._index.get(p, self.unk_id) for p in pieces]

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        """Ids to text; pad/bos/eos are left out unless skip_specials is False."""
        skip = self.special_ids if skip_specials else set()
        return self._join([self.id_to_token(i) for i in ids if int(i) not in skip])

    def tokenize(self, text: str) -> list[str]:
        """The token strings the model sees for this text (for display)."""
        return [self._tokens[i] for i in self.encode(text)]

    def unknown_in(self, text: str) -> list[str]:
        """Distinct pieces of text missing from the vocabulary, in order of appearance."""
        return self._unknown(self.pieces(text))

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description that `tokenizer_from_dict` rebuilds."""

    def _join(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def _unknown(self, pieces: list[str]) -> list[str]:
        missing = [p for p in pieces if p not in self._index]
        return list(dict.fromkeys(missing))

    def _unknown_message(self, unknown: list[str]) -> str:
        return f"not in the vocabulary: {', '.join(repr(u) for u in unknown)}"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class SymbolTokenizer(Tokenizer):
    """Whitespace-separated symbols, one id each, no specials (the reversal task)."""

    type_name = "symbol"

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        bad = [s for s in symbols if isinstance(s, str) and (not s or any(c.isspace() for c in s))]
        if bad:
            raise ValueError(f"symbols must be non-empty and contain no whitespace: {bad}")
        super().__init__(symbols)

    @classmethod
    def of_size(cls, vocab_size: int) -> SymbolTokenizer:
        """The default vocabulary "0", "1", ..., str(vocab_size - 1)."""
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {vocab_size}.")
        return cls([str(i) for i in range(vocab_size)])

    def pieces(self, text: str) -> list[str]:
        return text.split()

    def _join(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def _unknown_message(self, unknown: list[str]) -> str:
        return (
            f"unknown symbol(s) {', '.join(repr(u) for u in unknown)}; "
            f"allowed symbols are {' '.join(self._tokens)} (separated by spaces)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "symbols": self.tokens}


class CharTokenizer(Tokenizer):
    """One id per character, after pad/bos/eos at ids 0, 1, 2 (the dates task; no unk)."""

    type_name = "char"

    def __init__(self, chars: Iterable[str], specials: Sequence[str] = ("<pad>", "<s>", "</s>")) -> None:
        chars, specials = list(chars), list(specials)
        if len(specials) != 3:
            raise ValueError(f"specials must be exactly (pad, bos, eos), got {specials}.")
        long = [c for c in chars if not (isinstance(c, str) and len(c) == 1)]
        if long:
            raise ValueError(f"CharTokenizer chars must be single characters, got {long}.")
        super().__init__(specials + chars)
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    @property
    def chars(self) -> list[str]:
        """The content characters (the vocabulary without the specials)."""
        return self._tokens[3:]

    def pieces(self, text: str) -> list[str]:
        return list(text)

    def _unknown(self, pieces: list[str]) -> list[str]:
        specials = set(self._tokens[:3])
        missing = [p for p in pieces if p not in self._index or p in specials]
        return list(dict.fromkeys(missing))

    def _unknown_message(self, unknown: list[str]) -> str:
        return f"unknown character(s) {', '.join(repr(u) for u in unknown)}; allowed: {''.join(self.chars)!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "chars": self.chars, "specials": self._tokens[:3]}


_NEWLINE, _SPACE = "\n", " "


def split_words(text: str) -> list[str]:
    """Word-level pieces: words, single punctuation marks, and normalised whitespace.

    Whitespace policy: `re.split(r"\\b", text)` separates word runs from the rest;
    each non-word piece is cut into whitespace runs and single punctuation marks.
    A whitespace run containing a newline becomes "\\n" (so blank lines collapse to
    one newline), any other whitespace run becomes " ". Spaces are real tokens,
    so decoding is just "".join(tokens).

        "Who's there?\\n\\n  Nay" -> ["Who", "'", "s", " ", "there", "?", "\\n", "Nay"]
    """
    out: list[str] = []
    for part in re.split(r"\b", text):
        if not part:
            continue
        if re.fullmatch(r"\w+", part):
            out.append(part)
            continue
        for piece in re.findall(r"\s+|\S", part):
            if piece.isspace():
                out.append(_NEWLINE if "\n" in piece or "\r" in piece else _SPACE)
            else:
                out.append(piece)
    return out


class WordTokenizer(Tokenizer):
    """Words, punctuation marks and whitespace as tokens, with <unk> (Shakespeare)."""

    type_name = "word"

    def __init__(self, vocab: Sequence[str], unk: str = "<unk>") -> None:
        vocab = list(vocab)
        if unk not in vocab:
            vocab = [unk] + vocab
        super().__init__(vocab)
        self.unk = unk
        self.unk_id = self._index[unk]

    @classmethod
    def build(cls, text: str, max_vocab: int, unk: str = "<unk>") -> WordTokenizer:
        """Vocabulary of the max_vocab - 1 most frequent pieces (ties alphabetical), unk at id 0."""
        if max_vocab < 2:
            raise ValueError(f"max_vocab must be at least 2 (unk plus one word), got {max_vocab}.")
        counts = Counter(split_words(text))
        counts.pop(unk, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([unk] + [w for w, _ in ranked[: max_vocab - 1]], unk=unk)

    def pieces(self, text: str) -> list[str]:
        return split_words(text)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "tokens": self.tokens, "unk": self.unk}


_FIELDS = {"symbol": ("symbols",), "char": ("chars", "specials"), "word": ("tokens", "unk")}


def tokenizer_from_dict(d: Any) -> Tokenizer:
    """Rebuild a tokenizer from `to_dict()` output; ValueError when d is not one."""
    if not isinstance(d, dict):
        raise ValueError(f"tokenizer description must be a dict, got {type(d).__name__}.")  # noqa: TRY004
    kind = d.get("type")
    if kind not in _FIELDS:
        raise ValueError(f"unknown tokenizer type {kind!r}; expected one of {sorted(_FIELDS)}.")
    missing = [k for k in _FIELDS[kind] if k not in d]
    if missing:
        raise ValueError(f"{kind} tokenizer description lacks {missing}.")
    extra = sorted(set(d) - set(_FIELDS[kind]) - {"type"})
    if extra:
        raise ValueError(f"{kind} tokenizer description has unknown keys {extra}.")
    for key in _FIELDS[kind]:
        value = d[key]
        expect_list = key != "unk"
        if expect_list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{kind} tokenizer: {key!r} must be a list of strings.")
        if not expect_list and not isinstance(value, str):
            raise ValueError(f"{kind} tokenizer: {key!r} must be a string.")
    if kind == "symbol":
        return SymbolTokenizer(d["symbols"])
    if kind == "char":
        return CharTokenizer(d["chars"], specials=d["specials"])
    return WordTokenizer(d["tokens"], unk=d["unk"])
