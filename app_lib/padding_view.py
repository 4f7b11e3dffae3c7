"""The "batch" switch of the attention pages: a second input, the padded batch, its masks and both rows.

Shared by pages/attention_steps.py and pages/heatmaps.py; the numbers come from explain.padding.
URL keys: batch (on/off), second (the second input), pad (left/right, GPT only).
"""

from __future__ import annotations

import streamlit as st

from explain.examples import task_examples
from explain.inputs import code_span
from explain.labels import LABEL_NOTE, ROW_NOTE
from explain.padding import COLUMN_NOTE, default_second_input
from explain.trace import AttentionKindName, PreparedTrace
from viz.figures_padding import plot_padded_attention, plot_padded_ids, plot_padding_masks

from .state import Selection, url_radio, url_text_input, url_toggle
from .tracing import padded
from .ui import chart, show_notes

EXAMPLE_KEY = "second_example"


def _use_example() -> None:
    picked = st.session_state.get(EXAMPLE_KEY)
    if picked is not None:
        st.session_state["second"] = picked
        st.session_state[EXAMPLE_KEY] = None


def padding_section(selection: Selection, prepared: PreparedTrace, kind: AttentionKindName, layer: int,
                    head: int) -> None:
    """Nothing while the switch is off; with it on, the padded batch of the input and a second one."""
    if not url_toggle("Batch: add a second input of another length (padding)", "batch",
                      help="Pads both inputs to one length, as training and batched generation do."):
        return
    name, checkpoint = selection.entry.name, selection.checkpoint
    st.subheader("Padding: two inputs in one batch")
    columns = st.columns([3, 2])
    second = url_text_input("Second input", "second", default_second_input(checkpoint, selection.text),
                            where=columns[0], help="Another input of a different length. Press Enter to apply.")
    columns[1].selectbox("Or pick an example", task_examples(checkpoint), index=None, key=EXAMPLE_KEY,
                         placeholder="Pick an example...", on_change=_use_example)
    gpt = prepared.architecture == "gpt"
    side = url_radio("Pad on the", ["left", "right"], "pad") if gpt else "right"
    batch, notes = padded(name, selection.text, second, side)
    show_notes(notes)
    if batch is None:
        return
    chart(plot_padded_ids(batch, f"The batch: token and id per cell, padded on the {side} (grey = padding)"),
          "padding_ids")
    chart(plot_padding_masks(batch, kind, "Padding mask, and what each row's queries may read (grey = masked)"),
          "padding_masks")
    chart(plot_padded_attention(batch, kind, layer, head, f"Layer {layer}, head {head}: both rows, pad columns "
                                                          f"masked"), "padding_rows")
    st.caption(f"{LABEL_NOTE if kind == 'encoder' else ROW_NOTE} {COLUMN_NOTE}")
    st.markdown(f"The real tokens' outputs equal those of each input run alone: the largest difference in any "
                f"logit is **{batch.max_difference:.1e}** (rounding, not leakage).")
    if gpt:
        predictions = ", ".join(f"row {row}: {code_span(at_end)} (alone: {code_span(alone)})"
                                for row, (at_end, alone) in enumerate(zip(batch.last_column, batch.alone_next)))
        st.markdown("**Why generation pads on the left.** The next token is read at the batch's last column. "
                    f"Predicted there: {predictions}. "
                    + ("With right padding the short row's last column is a pad, so its next token comes from the "
                       "wrong place." if side == "right" else
                       "With left padding every row ends with a real token, so each gets the token it would get "
                       "alone."))
