"""The explanation layer's records of a listed checkpoint, cached for every session.

`st.cache_data` copies what it returns for each caller, so no session can change another's
record. Keys include the checkpoint's file stamps (`version_of`), so a model saved again under
the same name is traced afresh.
"""

from __future__ import annotations

import streamlit as st

from explain.embeddings import VocabProjection, project_vocabulary
from explain.experiments import AblationResult, HeadRef, PositionAccuracy, ablate, accuracy_by_position, head_choice
from explain.hiding import HiddenTokens, hide_tokens
from explain.importance import ImportanceMap, importance_map
from explain.inputs import Note
from explain.lens import LensRecord, lens_record
from explain.padding import PaddedBatch, Side, pad_batch
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


# ------------------------------------------------------------------ experiments (heads off, hidden tokens,
# padding, logit lens): each cached per checkpoint version and what it depends on, no more.


@st.cache_data(show_spinner="Switching heads off...", max_entries=64)
def _ablation_cached(name: str, version: tuple, text: str, off: tuple[HeadRef, ...]) -> AblationResult:
    checkpoint = load_model(name)
    return ablate(checkpoint, text, head_choice(checkpoint, off))


def ablation(name: str, text: str, off: tuple[HeadRef, ...]) -> AblationResult:
    """The input's output and next-token probabilities, intact and with the heads `off` switched off."""
    return _ablation_cached(name, version_of(name), text, off)


@st.cache_data(show_spinner="Measuring accuracy on fresh data...", max_entries=128)
def _accuracy_cached(name: str, version: tuple, off: tuple[HeadRef, ...]) -> PositionAccuracy | None:
    checkpoint = load_model(name)
    return accuracy_by_position(checkpoint, head_choice(checkpoint, off))


def accuracy(name: str, off: tuple[HeadRef, ...]) -> PositionAccuracy | None:
    """The task's accuracy by position with the heads `off` switched off, cached per mask."""
    return _accuracy_cached(name, version_of(name), off)


@st.cache_data(show_spinner="Switching off each head, then each layer...", max_entries=16)
def _importance_cached(name: str, version: tuple) -> ImportanceMap | None:
    return importance_map(load_model(name))


def importance(name: str) -> ImportanceMap | None:
    """The accuracy drop of every head alone and every layer whole (None when the task has no accuracy)."""
    return _importance_cached(name, version_of(name))


@st.cache_data(show_spinner="Hiding the tokens...", max_entries=64)
def _hidden_cached(name: str, version: tuple, text: str, positions: tuple[int, ...]) -> HiddenTokens:
    return hide_tokens(load_model(name), traced(name, text), positions)


def hidden(name: str, text: str, positions: tuple[int, ...]) -> HiddenTokens:
    """The traced input with the tokens at `positions` hidden as keys, compared with the intact one."""
    return _hidden_cached(name, version_of(name), text, positions)


@st.cache_data(show_spinner="Padding the batch...", max_entries=64)
def _padded_cached(name: str, version: tuple, text: str, second: str, side: Side):
    return pad_batch(load_model(name), traced(name, text), second, side)


def padded(name: str, text: str, second: str, side: Side) -> tuple[PaddedBatch | None, tuple[Note, ...]]:
    """The input and a second one in one padded batch, traced (None and notes when the second is refused)."""
    return _padded_cached(name, version_of(name), text, second, side)


@st.cache_data(show_spinner="Reading every layer's guess...", max_entries=64)
def _lens_cached(name: str, version: tuple, text: str) -> LensRecord:
    return lens_record(load_model(name), traced(name, text))


def lens(name: str, text: str) -> LensRecord:
    """The logit lens of the traced input."""
    return _lens_cached(name, version_of(name), text)
