"""Small page helpers: the intro every page opens with, notes, charts, and the traced input."""

from __future__ import annotations

import re
from typing import Sequence

import plotly.graph_objects as go
import streamlit as st

from .inputs import Note, code_span
from .state import Selection
from .tracing import PreparedTrace, traced

# Plotly's modebar stays on: its camera button downloads the figure as a PNG.
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": True}


def intro(title: str, text: str, formula: str | None = None) -> None:
    """The page title, two or three sentences on what the student sees, and the formula."""
    st.title(title)
    st.markdown(text)
    if formula:
        st.latex(formula)


def show_notes(notes: Sequence[Note]) -> None:
    """Each note as st.info / st.warning / st.error."""
    for note in notes:
        {"info": st.info, "warning": st.warning, "error": st.error}[note.level](note.message)


def chart(fig: go.Figure, name: str) -> None:
    """A plotly chart at full width; the PNG download is named after the chart."""
    filename = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    config = PLOTLY_CONFIG | {"toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}
    st.plotly_chart(fig, config=config, width="stretch", key=f"chart::{name}")


def traced_input(selection: Selection) -> PreparedTrace:
    """The selection's trace, with its notes shown; stops the page when the input was refused."""
    prepared = traced(selection.entry.name, selection.text)
    show_notes(prepared.notes)
    if not prepared.ok:
        st.stop()
    line = f"{code_span(selection.entry.name)} reads {len(prepared.tokens)} tokens"
    if prepared.answer is not None:
        line += f" · {prepared.answer_label}: {code_span(prepared.answer)}"
    st.markdown(line)
    return prepared
