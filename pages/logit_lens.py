"""Logit lens: what the model would predict if it stopped after each layer."""

import streamlit as st

from app_lib.state import Selection, current_selection
from app_lib.tracing import lens
from app_lib.ui import chart, intro, page_fragment, traced_input
from explain.inputs import code_span
from explain.labels import ROW_NOTE
from viz.figures_experiments import plot_lens, plot_lens_climb

selection = current_selection()
intro(
    "Logit lens",
    "After every layer the residual stream holds the model's work so far. Put it through the final norm and the "
    "LM head, as if the model stopped there, and read the token it would predict. Each cell shows that token "
    "for one position (columns) after the embeddings and after each layer (rows), coloured by its probability; "
    "the last row is what the model really predicts. For the encoder-decoder the lens reads the decoder.",
    r"\mathrm{lens}_\ell = \mathrm{softmax}\big(\mathrm{LN}_{final}(x^{(\ell)})\, W_{U}\big),"
    r"\quad \ell = 0 \;(\text{embeddings}), 1, \dots, n_{layers}",
)
traced_input(selection)  # the input's notes; stops the page when the input was refused


@page_fragment("logit_lens")
def logit_lens_page(selection: Selection) -> None:
    record = lens(selection.entry.name, selection.text)
    chart(plot_lens(record, "Top token and its probability, per layer (rows) and position (columns)"), "lens")
    st.caption(f"Each column is a decoder's row, labelled as on the heatmaps. {ROW_NOTE}")
    chart(plot_lens_climb(record, "The probability of the final prediction through the layers"), "lens_climb")
    st.subheader("Where each prediction appears")
    lines = [f"- {code_span(label)}: on top from {reading}" for label, reading in record.appearances()]
    if record.writes_answer:
        st.markdown("The positions that write the model's answer (for reversal, each one's mirrored symbol):")
    st.markdown("\n".join(lines))


logit_lens_page(selection)
