"""The explanation layer's records of a listed checkpoint, cached for every session.

`st.cache_data` copies what it returns for each caller, so no session can change another's
record. Keys include the checkpoint's file stamps (`version_of`), so a model saved again under
the same name is traced afresh.
"""

from __future__ import annotations

import streamlit as st

from explain.embeddings import VocabProjection, project_vocabulary
from explain.trace import PreparedTrace, prepare_trace

from .checkpoints import load_model, version_of


@st.cache_data(show_spinner="Tracing the model...", max_entries=64)
def _traced_cached(name: str, version: tuple, text: str) -> PreparedTrace:
    return prepare_trace(load_model(name), text)


def traced(name: str, text: str) -> PreparedTrace:
    """The prepared trace of a listed checkpoint on text, cached per (checkpoint version, text)."""
    return _traced_cached(name, version_of(name), text)


@st.cache_data(show_spinner="Projecting the vocabulary...", max_entries=16)
def _projected_cached(name: str, version: tuple) -> VocabProjection:
    return project_vocabulary(load_model(name))


def vocabulary_projection(name: str) -> VocabProjection:
    """Cached `project_vocabulary` of a listed checkpoint."""
    return _projected_cached(name, version_of(name))
