"""Positional encodings: the sinusoidal table, its waves, why it encodes distance, and the checkpoint's own."""

import streamlit as st

from app_lib.state import current_selection, url_slider
from app_lib.ui import chart, intro, page_fragment, traced_input
from explain.embeddings import embedding_facts, positional_table, sinusoidal
from viz.figures_embeddings import (
    plot_embedding_sum,
    plot_position_similarity,
    plot_positional_curves,
    plot_positional_matrix,
)

selection = current_selection()
intro(
    "Positional encodings",
    "Attention compares every token with every other and on its own ignores their order: shuffle the input "
    "and each token gets the same scores. So a position vector is added to each token vector. The original "
    "transformer uses fixed sine and cosine waves of different frequencies; GPT-style models learn one vector "
    "per position instead.",
    r"PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_{model}}}\right), \qquad "
    r"PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_{model}}}\right)",
)


@page_fragment("positional")
def sinusoidal_sections() -> None:
    """Sections 1-3 depend only on their own sliders: moving one reruns only this (app_lib.ui.page_fragment)."""
    st.subheader("1. The sinusoidal table")
    left, right = st.columns(2)
    length = url_slider("Length (positions)", "length", min_value=4, max_value=256, default=64, where=left)
    d_model = url_slider("d_model", "d_model", min_value=8, max_value=512, default=128, step=8, where=right)
    table = sinusoidal(length, d_model)
    chart(plot_positional_matrix(table, f"Sinusoidal encodings: {length} positions × d_model = {d_model}"),
          "sinusoidal_table")

    st.subheader("2. Each dimension is a wave")
    st.markdown("Dimension pairs (2i, 2i+1) are a sine and a cosine of the same frequency, which falls as i grows: "
                "the first dimensions change at every step, the last ones hardly at all, like the hands of a clock.")
    dims = st.multiselect("Dimensions to draw", list(range(d_model)),
                          default=[d for d in (0, 1, 6, 16, 40) if d < d_model])
    chart(plot_positional_curves(table, dims), "sinusoidal_curves")

    st.subheader("3. Nearby positions look alike")
    st.markdown("The dot product of two encodings depends only on the distance between the positions, not on "
                "where they are: the bands run parallel to the diagonal. That is how the model can read "
                "relative distance.")
    st.latex(r"PE_i \cdot PE_j = \sum_{k} \cos\!\big(\omega_k\,(i - j)\big), \qquad \omega_k = 10000^{-2k/d_{model}}")
    chart(plot_position_similarity(table, f"PE[i] · PE[j] for {length} positions"), "position_similarity")


sinusoidal_sections()

st.subheader(f"4. In {selection.entry.name}: token + position")
facts = embedding_facts(selection.checkpoint)
kind = facts.pos_encoding
st.markdown(f"This model's positional encoding is **{kind}**"
            + (" (one vector per position, learned in training like the embeddings)." if kind == "learned" else ".")
            + f" d_model = {facts.d_model}, context max_len = {facts.max_len}.")
prepared = traced_input(selection)
embedding = prepared.source_stack.embedding
chart(plot_embedding_sum(embedding.token_embeddings[0], embedding.positional, embedding.summed[0],
                         prepared.labels, kind), "embedding_plus_position")
own_table = positional_table(selection.checkpoint)
if own_table is None:
    st.info("This model has no positional encoding: it cannot tell positions apart except through the causal mask.")
else:
    chart(plot_position_similarity(own_table, f"The model's own {kind} table: PE[i] · PE[j] over all "
                                              f"{facts.max_len} positions"), "model_position_similarity")
