"""Home: what the app is, the tour, the notation, the shipped models."""

from pathlib import Path

import streamlit as st

from app_lib.checkpoints import list_checkpoints
from app_lib.model_info import describe_checkpoint, markdown_table
from app_lib.state import ensure_entrypoint

ensure_entrypoint()  # this page reads no selection, but must still run inside app.py (see ensure_entrypoint)

st.title("Transformer Playground")
st.markdown(
    "Small transformers written from scratch in PyTorch, opened up. Pick a model and an input in the "
    "sidebar, then follow the tour: every number on these pages comes from the model's own forward pass "
    "on your input, traced layer by layer."
)
st.latex(r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_{head}}} + M\right)V")

st.subheader("The tour")
TOUR = [
    ("pages/embeddings.py", "Tokens & embeddings", "how text becomes token ids, and ids become vectors"),
    ("pages/positional.py", "Positional encodings", "how the model knows where each token is"),
    ("pages/attention_steps.py", "Attention, step by step", "one head, from X to the output, every matrix"),
    ("pages/heatmaps.py", "Attention heatmaps", "all heads and layers at once, plus bertviz views"),
    ("pages/compare_attention.py", "MHA vs GQA vs MQA", "fewer key/value heads: what changes, what it saves"),
    ("pages/kv_cache.py", "KV cache and generation", "how generation reuses keys and values"),
    ("pages/train.py", "Train", "train your own small model and open it here"),
    ("pages/my_models.py", "Your models", "upload, download and check your own models"),
]
ROOT = Path(__file__).resolve().parent.parent
available = [step for step in TOUR if (ROOT / step[0]).exists()]  # the "Go further" pages may not exist yet
for number, (path, title, what) in enumerate(available, start=1):
    left, right = st.columns([1, 3])
    left.page_link(path, label=f"{number}. {title}")
    right.markdown(what)

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
rows = [describe_checkpoint(entry) for entry in list_checkpoints()]
if rows:
    st.markdown(markdown_table(rows))
else:
    st.info("No checkpoints yet: train one with "
            "`python -m model.train --task reversal --out checkpoints/reversal-mha`.")
