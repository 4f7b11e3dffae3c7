"""Transformer Playground: the Streamlit entry point (placeholder until the pages land)."""

import streamlit as st

st.set_page_config(page_title="Transformer Playground", page_icon="🔍", layout="wide")
st.title("Transformer Playground")
st.write(
    "Open small transformers written from scratch in PyTorch and watch them work. "
    "Coming pages: tokens & embeddings, positional encodings, attention step by step, "
    "attention heatmaps (with bertviz, offline), MHA vs GQA vs MQA, the KV cache during generation, "
    "and training a model on the reversal task."
)
