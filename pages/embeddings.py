"""Tokens & embeddings: text -> tokens -> ids -> rows of the embedding matrix."""

import streamlit as st

from app_lib.state import current_selection
from app_lib.tracing import vocabulary_projection
from app_lib.ui import chart, intro, record_table, traced_input
from explain.embeddings import embedding_facts
from explain.labels import display_token
from viz.figures_embeddings import plot_cosine_similarity, plot_token_embeddings, plot_vocab_scatter

selection = current_selection()
intro(
    "Tokens & embeddings",
    "The tokenizer cuts the text into pieces from a fixed vocabulary and gives each an id. The id picks one "
    "row of the embedding matrix E: that learned vector of d_model numbers is all the model knows about the "
    "token before attention mixes in the others.",
    r"x_t = E[\mathrm{id}_t] \in \mathbb{R}^{d_{model}}, \qquad E \in \mathbb{R}^{V \times d_{model}}",
)
prepared = traced_input(selection)
facts = embedding_facts(selection.checkpoint)
embedding = prepared.source_stack.embedding
labels = prepared.labels

st.subheader("1. Text → tokens → ids")
record_table(prepared.token_table(), transpose=True, index="position")
if prepared.answer_starts_inside:
    st.caption(f"Positions from {prepared.prompt_length} on are the model's own answer, fed back as input.")

st.subheader("2. Each id picks a row of E")
scaled = f", times √d_model = {facts.scale:.1f} as in the original paper" if facts.scale is not None else ""
st.markdown(f"T = {len(labels)} tokens, d_model = {facts.d_model}: the rows below form a T × d_model "
            f"matrix{scaled}. Colours are the numbers; hover for values.")
chart(plot_token_embeddings(embedding.token_embeddings[0], labels,
                            f"Token embeddings (T={len(labels)} × d_model={facts.d_model})"), "token_embeddings")

st.subheader("3. Which of your tokens look alike?")
st.markdown("The cosine of the angle between two embedding vectors: 1 means the same direction, 0 unrelated, "
            "−1 opposite. The same token twice always scores 1.")
st.latex(r"\cos(x_i, x_j) = \frac{x_i \cdot x_j}{\lVert x_i \rVert \, \lVert x_j \rVert}")
chart(plot_cosine_similarity(embedding.token_embeddings[0], labels), "cosine_similarity")

st.subheader("4. The whole vocabulary in two dimensions")
st.markdown("Principal component analysis finds the two directions along which the embedding vectors vary "
            "most; each token is drawn at its coordinates along them. Tokens the model treats alike land "
            "close together (digits apart from letters in the dates model, for example).")
projection = vocabulary_projection(selection.entry.name)
chart(plot_vocab_scatter(projection.coords, projection.tokens, projection.explained,
                         highlight=[display_token(t) for t in prepared.tokens]), "vocabulary_pca")
