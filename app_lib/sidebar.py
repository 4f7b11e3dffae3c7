"""The sidebar every page shares: checkpoint picker, model card, input text with examples.

Rendered once per run by app.py, which stores the result with `state.set_selection`.
Broken checkpoints are listed with the reason instead of being offered; a checkpoint that
fails while loading shows the error, and the picker keeps working.
"""

from __future__ import annotations

import streamlit as st

from explain.examples import default_text, task_examples
from explain.inputs import code_span
from explain.models import model_card
from model import CheckpointError, LoadedCheckpoint

from .checkpoints import USER_PREFIX, CheckpointEntry, list_checkpoints, load_model, user_models_dir
from .state import Selection, url_selectbox, url_text_input, url_toggle
from .ui import PRESENT_KEY

CHECKPOINT_KEY, TEXT_KEY = "checkpoint", "text"
MAX_INPUT_CHARS = 2000
# The sidebar's starting width in pixels (app.py's page config). Streamlit's default, 300, left an 800-pixel
# screen (half a laptop, a projector at 150%) a 500-pixel page; at 256 the longest page name in the menu, "KV
# cache and generation", still fits. Below 768 pixels Streamlit starts it collapsed.
SIDEBAR_PX = 256


def render_sidebar() -> Selection | None:
    """Draw the sidebar; the Selection for this run, or None when no checkpoint can be opened."""
    selection = _model_and_input()
    with st.sidebar:  # last, so the model and input controls keep their place
        st.divider()
        url_toggle("Presentation mode", PRESENT_KEY, help="Large dark labels, every token labelled, values in the "
                   "cells of small matrices, for a projector. In the link as ?present=true.")
    return selection


def _model_and_input() -> Selection | None:
    """The checkpoint picker, model card and input; None when no checkpoint can be opened."""
    entries = list_checkpoints()
    usable = [e for e in entries if e.error is None]
    with st.sidebar:
        st.header("Model and input")
        if not usable:
            st.error(f"No usable checkpoint in `checkpoints/` or `{user_models_dir()}`. Train one with "
                     "`python -m model.train --task reversal --out checkpoints/reversal-mha`.")
            _list_broken(entries)
            return None
        names = [e.name for e in usable]
        name = url_selectbox("Checkpoint", names, CHECKPOINT_KEY, on_change=_reset_text,
                             help=f"Shipped models, then your own ({USER_PREFIX}...) from {user_models_dir()}.")
        entry = next(e for e in usable if e.name == name)
        try:
            checkpoint = load_model(entry.name)
        except CheckpointError as error:
            st.error(f"{code_span(entry.name)} could not be loaded: {error}")
            _list_broken(entries)
            return None
        _model_card(entry, checkpoint)
        text = _input_controls(entry, checkpoint)
        _list_broken(entries)
    return Selection(entry, checkpoint, text)


def select_checkpoint(name: str) -> None:
    """Make the sidebar open `name` (a list_checkpoints() name) with its task's default input.

    For other pages' callbacks (e.g. after saving a model: `on_click=select_checkpoint,
    args=(user_entry_name(folder),)`); it must run before the sidebar is drawn, as callbacks do.
    """
    st.session_state[CHECKPOINT_KEY] = name
    _reset_text()


def _reset_text() -> None:
    """A new checkpoint gets its own task's default input (the old text may not even be readable)."""
    try:
        st.session_state[TEXT_KEY] = default_text(load_model(st.session_state[CHECKPOINT_KEY]))
    except CheckpointError:
        pass  # render_sidebar shows the error


def _use_example(widget_key: str) -> None:
    picked = st.session_state.get(widget_key)
    if picked is not None:
        st.session_state[TEXT_KEY] = picked
        st.session_state[widget_key] = None


def _input_controls(entry: CheckpointEntry, checkpoint: LoadedCheckpoint) -> str:
    examples = task_examples(checkpoint)
    text = url_text_input("Input text", TEXT_KEY, examples[0], max_chars=MAX_INPUT_CHARS,
                          help="What the model reads. Press Enter to apply.")
    example_key = f"example::{entry.name}"
    st.selectbox("Examples", examples, index=None, key=example_key, placeholder="Pick an example...",
                 on_change=_use_example, args=(example_key,))
    return text


def _model_card(entry: CheckpointEntry, checkpoint: LoadedCheckpoint) -> None:
    st.caption("  \n".join(model_card(checkpoint, own=entry.source == "user").lines))


def _list_broken(entries: list[CheckpointEntry]) -> None:
    broken = [e for e in entries if e.error]
    if broken:
        with st.expander(f"{len(broken)} checkpoint(s) cannot be opened"):
            for e in broken:
                st.markdown(f"- {code_span(e.name)}: {code_span(e.error)}")
