"""Home: what the app is, the tour, the notation, the shipped models."""


import streamlit as st

from app_lib.checkpoints import list_checkpoints
from app_lib.markdown import markdown_table
from app_lib.state import ensure_entrypoint
from app_lib.tour import HOME, TOUR
from explain.models import describe_checkpoint

ensure_entrypoint()  # this page reads no selection, but must still run inside app.py (see ensure_entrypoint)

st.title("Transformer Playground")
st.markdown(
    "Small transformers written from scratch in PyTorch, opened up. Pick a model and an input in the "
    "sidebar, then follow the tour: every number on these pages comes from the model's own forward pass "
    "on your input, traced layer by layer."
)
st.latex(r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_{head}}} + M\right)V")

st.subheader("The tour")
for number, page in enumerate((p for p in TOUR if p.path != HOME), start=1):
    left, right = st.columns([1, 3])
    left.page_link(page.path, label=f"{number}. {page.title}")
    right.markdown(page.what)

st.subheader("Notation")
st.markdown(
    "| symbol | meaning |\n| --- | --- |\n"
    "| B | batch size (1 here: one input at a time) |\n"
    "| T | length of the sequence the queries come from (the target, or the only sequence of a GPT) |\n"
    "| S | length of the source sequence an encoder reads (encoder-decoder models) |\n"
    "| d_model (D) | width of every token vector in the model |\n"
    "| H | number of attention (query) heads |\n"
    "| H_kv | number of key/value heads: H is multi-head (MHA), 1 is multi-query (MQA), between is grouped (GQA) |\n"
    "| d_head | width of one head: d_model / H |\n"
    "| V | vocabulary size |\n"
    "| M | the mask: 0 where attention is allowed, minus infinity where it is not |"
)

st.subheader("The models")
rows = [describe_checkpoint(e.name, e.source, e.path, e.error) for e in list_checkpoints()]
if rows:
    st.markdown(markdown_table(rows))
else:
    st.info("No checkpoints yet: train one with "
            "`python -m model.train --task reversal --out checkpoints/reversal-mha`.")
