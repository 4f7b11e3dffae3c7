"""How tokens are written on screen: one convention for every axis, table and hover text.

    display_token("\n") -> "⏎"      spaces, newlines and tabs become visible symbols
    token_labels(["a", "b"]) -> ["0:a", "1:b"]   "position:token", unique because plotly merges equal
                                                  category labels into one row
"""

from __future__ import annotations

from collections.abc import Iterable

VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def display_token(token: str) -> str:
    """A token as text a person can see: spaces, newlines and tabs become visible symbols."""
    if token in VISIBLE:
        return VISIBLE[token]
    return "".join(VISIBLE.get(c, c) for c in token) if token.isspace() else token


def token_labels(tokens: Iterable[str]) -> list[str]:
    """Unique axis labels "position:token"."""
    return [f"{i}:{display_token(t)}" for i, t in enumerate(tokens)]
