"""Positional encodings: the sinusoidal table, its waves, why it encodes distance, and the checkpoint's own."""

import streamlit as st

from app_lib.state import current_selection, url_selectbox, url_slider
from app_lib.ui import chart, intro, page_fragment, show_formula, traced_input
from explain.embeddings import embedding_facts, positional_table, sinusoidal
from explain.rope import rope_pairs, rope_view
from viz.figures_embeddings import (
    plot_embedding_sum,
    plot_position_similarity,
    plot_positional_curves,
    plot_positional_matrix,
)
from viz.figures_rope import plot_rope_rotation, plot_rope_scores

selection = current_selection()
intro(
    "Positional encodings",
    "Attention compares every token with every other and on its own ignores their order: shuffle the input "
    "and each token gets the same scores. So a position vector is added to each token vector. The original "
    "transformer uses fixed sine and cosine waves of different frequencies; GPT-style models learn one vector "
    "per position instead.",
    (r"PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_{model}}}\right),",
     r"PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_{model}}}\right)"),
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
    show_formula(r"PE_i \cdot PE_j = \sum_{k} \cos\!\big(\omega_k\,(i - j)\big),", r"\omega_k = 10000^{-2k/d_{model}}")
    chart(plot_position_similarity(table, f"PE[i] · PE[j] for {length} positions"), "position_similarity")


sinusoidal_sections()

st.subheader(f"4. In {selection.entry.name}: token + position")
facts = embedding_facts(selection.checkpoint)
kind = facts.pos_encoding
st.markdown(f"This model's positional encoding is **{kind}**"
            + (" (one vector per position, learned in training like the embeddings)." if kind == "learned" else
               " (rotary: nothing is added to the embeddings; see section 5)." if kind == "rope" else ".")
            + f" d_model = {facts.d_model}, context max_len = {facts.max_len}.")
prepared = traced_input(selection)
embedding = prepared.source_stack.embedding
chart(plot_embedding_sum(embedding.token_embeddings[0], embedding.positional, embedding.summed[0],
                         prepared.labels, kind), "embedding_plus_position")
own_table = positional_table(selection.checkpoint)
if kind == "rope":
    st.subheader("5. RoPE: positions as rotations of q and k")
    st.markdown("Rotary position embeddings add nothing to the token vectors (the sum above has no positional "
                "term). Inside every attention layer, each query and key is split into pairs of coordinates and "
                "each pair is turned by an angle proportional to the token's position, at its own frequency. "
                "A rotation keeps the length of a vector, and two vectors turned by m and n steps have the dot "
                "product of two vectors turned by m − n: the score sees the distance, never the positions."
                + (" In this MLA model only the decoupled rotary part of each key (shared by all heads) and of "
                   "each query turns; the content keys from the latent carry no position." if facts.mla else ""))
    show_formula(r"\theta_i = \mathrm{base}^{-2i/d},", r"(x_i, x_{i+d/2}) \mapsto",
                 r"(x_i \cos m\theta_i - x_{i+d/2} \sin m\theta_i,", r"x_i \sin m\theta_i + x_{i+d/2} \cos m\theta_i)")
    columns = st.columns(3)
    config = selection.checkpoint.config
    layer = url_selectbox("Layer", range(config.n_layers), "rope_layer", where=columns[0])
    head = url_selectbox("Head", range(config.n_heads), "rope_head", where=columns[1])
    pair = url_selectbox("Pair i", range(rope_pairs(config)), "rope_pair", where=columns[2])
    view = rope_view(config, prepared.attention(prepared.kinds[0])[layer], prepared.labels, layer, head, pair)
    st.markdown(f"The q of the last token ({view.query_token}) and the k of the first ({view.key_token}), as this "
                f"head computed them before rotation, placed at every position 0 … {view.positions[-1]}. "
                f"Pair {view.pair} turns {view.turns_per_position} (base {view.base:g}).")
    chart(plot_rope_rotation(view), "rope_rotation")
    chart(plot_rope_scores(view), "rope_scores")
    st.caption(f"Computed with the model's own apply_rope. The two lines differ by at most "
               f"{view.max_curve_difference:.1e} (float32 rounding): the score depends on the distance only.")
elif own_table is None:
    st.info("This model has no positional encoding: it cannot tell positions apart except through the causal mask.")
else:
    chart(plot_position_similarity(own_table, f"The model's own {kind} table: PE[i] · PE[j] over all "
                                              f"{facts.max_len} positions"), "model_position_similarity")
