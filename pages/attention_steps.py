"""Attention, step by step: one head of one layer, from X to the output, every matrix on screen."""

import streamlit as st

from app_lib.padding_view import padding_section
from app_lib.state import Selection, current_selection, url_radio, url_selectbox
from app_lib.ui import chart, intro, page_fragment, record_table, show_formula, traced_input
from explain.attention import attention_shapes, dot_product
from explain.labels import LABEL_NOTE, ROW_NOTE
from explain.rope import latent_rows, rotation_rows
from explain.trace import ATTENTION_KINDS, PreparedTrace
from viz.figures import (
    plot_attention_input,
    plot_attention_weights,
    plot_concat_output,
    plot_dot_product,
    plot_head_output,
    plot_qkv,
    plot_scores,
)
from viz.figures_rope import plot_latent_rows, plot_rotation_rows

selection = current_selection()
intro(
    "Attention, step by step",
    "Each token's vector is projected three ways: a query (what am I looking for?), a key (what do I "
    "contain?) and a value (what do I pass on?). A query's scores against all keys, scaled and masked, go "
    "through a softmax; the weights average the values. Heads do this in parallel and W_O mixes the results.",
    (r"\mathrm{head}_h = \mathrm{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{d_{head}}} + M\right) V_h,",
     r"Q_h = X W_Q^{(h)},\ K_h = X W_K^{(g)},\ V_h = X W_V^{(g)},", r"g = \lfloor h / (H / H_{kv}) \rfloor"),
)
prepared = traced_input(selection)


@page_fragment("attention_steps")
def attention_steps(selection: Selection, prepared: PreparedTrace) -> None:
    """Everything below the input: a layer, head or position change reruns only this (app_lib.ui.page_fragment)."""
    config = selection.checkpoint.config
    kind = url_radio("Attention", prepared.kinds, "attention") if len(prepared.kinds) > 1 else prepared.kinds[0]
    about = ATTENTION_KINDS[kind]
    st.info(f"**{about.title}.** Queries come from {about.queries_from}; keys and values from {about.keys_from}. "
            f"Mask: {about.mask}.")
    q_labels, k_labels = prepared.query_labels(kind), prepared.key_labels(kind)
    columns = st.columns(4)
    layer = url_selectbox("Layer", range(config.n_layers), "layer", where=columns[0])
    head = url_selectbox("Head", range(config.n_heads), "head", where=columns[1])
    query = url_selectbox("Query position", range(len(q_labels)), "query", index=len(q_labels) - 1, where=columns[2])
    key = url_selectbox("Key position", range(len(k_labels)), "key", where=columns[3])
    att = prepared.attention(kind)[layer]
    shapes = attention_shapes(prepared, selection.checkpoint, kind, layer)
    st.caption(f"Query {q_labels[query]} · key {k_labels[key]} (outlined in orange below). "
               + (ROW_NOTE if kind != "encoder" else LABEL_NOTE))

    st.subheader("1. X and the weight matrices")
    x_query, x_kv = prepared.attention_inputs(kind, layer)
    st.markdown(f"X has one row per token: T = {shapes.n_queries} rows × d_model = {shapes.d_model} columns"
                + (f"; the encoder output it reads has S = {shapes.n_keys} rows." if kind == "cross" else ".")
                + f" {shapes.d_head_formula}.")
    record_table(shapes.projections, index="matrix")
    chart(plot_attention_input(x_query, x_kv, q_labels, k_labels, cross=kind == "cross"), "attention_input")

    st.subheader("2. Q, K and V")
    group = shapes.group_size
    st.markdown(f"Head {head} reads key/value head {shapes.kv_head_of(head)}"
                + (f" (shared by {group} query heads: {shapes.n_kv_heads} K/V heads for {shapes.n_heads} "
                   f"query heads)." if group > 1 else " (one K/V head per query head: multi-head attention)."))
    chart(plot_qkv(att, head, q_labels, k_labels, query, key), "q_k_v")
    latent = latent_rows(att, head)
    if latent is not None:
        st.markdown("**Multi-head latent attention.** K and V are not projected from X directly: X is first "
                    "compressed to a small latent c_KV per token, and each head's keys and values are projected "
                    "up from it. " + latent.summary)
        chart(plot_latent_rows(latent, k_labels, head), "mla_latent")
    rotation = rotation_rows(att, head, shapes.kv_head_of(head))
    if rotation is not None:
        st.markdown("**RoPE.** Before the scores, each q and k is turned by its position (the positional "
                    "encodings page shows one pair turning); Q and K above are the rotated ones."
                    + (" In MLA only the rotary part turns: the last numbers of each query and the shared "
                       "rotary key." if latent is not None else ""))
        chart(plot_rotation_rows(rotation, q_labels, k_labels), "rope_rotation_rows")

    st.subheader("3. Scores: QKᵀ, scaled by √d_head, then masked")
    st.markdown(f"Dividing by √d_head = √{shapes.d_head} keeps the scores from growing with the head size, so the "
                "softmax does not saturate. The three panels share one colour scale, so the division shows as paler "
                "colours. Masked cells (grey) become −∞: after the softmax their weight is exactly 0, so they are "
                "drawn as masked, not as a small number.")
    chart(plot_scores(att, head, q_labels, k_labels, query, key), "scores")

    st.subheader("4. Softmax: each row becomes weights that sum to 1")
    show_formula(r"w_{ij} = \frac{e^{s_{ij}}}{\sum_{j' \text{ allowed}} e^{s_{ij'}}}")
    chart(plot_attention_weights(att, head, q_labels, k_labels, "Attention weights (rows: queries, columns: keys)",
                                 query, key), "weights")

    st.subheader("5. Weights × V")
    chart(plot_head_output(att, head, q_labels, query), "head_output")

    st.subheader("6. Concatenate the heads, project with W_O")
    chart(plot_concat_output(att, q_labels, query), "concat_output")

    st.subheader(f"7. Where the score of query {q_labels[query]} and key {k_labels[key]} comes from")
    dp = dot_product(att, head, query, key)
    show_formula(dp.latex())
    if dp.allowed:
        st.markdown(f"After the mask and the softmax over the row this cell gets weight **{dp.weight:.4f}**.")
    else:
        st.markdown("This cell is **masked**: its score is replaced by −∞, so its weight is 0 whatever q · k is.")
    chart(plot_dot_product(dp.q, dp.k, f"q of {q_labels[query]} (head {head}) and k of {k_labels[key]} "
                                       f"(kv head {dp.kv_head})"), "dot_product")
    padding_section(selection, prepared, kind, layer, head)


attention_steps(selection, prepared)
