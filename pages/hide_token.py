"""What if: hide a token. Mask input tokens as keys and see which outputs change, and by how much."""

import streamlit as st

from app_lib.state import Selection, current_selection, url_radio, url_selectbox
from app_lib.tracing import hidden
from app_lib.ui import chart, intro, page_fragment, record_table, traced_input
from app_lib.url_choices import url_multiselect
from explain.hiding import hidable_labels
from explain.labels import LABEL_NOTE, ROW_NOTE
from explain.trace import PreparedTrace
from viz.figures import plot_head_grid
from viz.figures_experiments import plot_hidden_changes

selection = current_selection()
intro(
    "What if: hide a token",
    "Pick tokens to hide. In every layer, every query's weight to a hidden token becomes 0 and the rest of its "
    "row is renormalised, as if the token were not there to be read; its position stays the same (unlike padding, "
    "which also renumbers positions). The chart shows how far each output moved. For the encoder-decoder the "
    "hidden tokens are source tokens: neither the encoder nor cross-attention can read them.",
    r"w_{ij} = \frac{e^{s_{ij}}\,[j \notin \text{hidden}]}{\sum_{j' \notin \text{hidden}} e^{s_{ij'}}}",
)
prepared = traced_input(selection)


@page_fragment("hide_token")
def hide_token(selection: Selection, prepared: PreparedTrace) -> None:
    """The tokens to hide and what changes: a change reruns only this (app_lib.ui.page_fragment)."""
    labels = hidable_labels(prepared)
    picked = url_multiselect("Tokens to hide", labels, "hide", placeholder="Pick one or more tokens",
                             help="Position:token. The link keeps your choice, e.g. ?hide=2:4")
    positions = tuple(labels.index(label) for label in picked)
    result = hidden(selection.entry.name, selection.text, positions)
    st.markdown(result.summary)
    if not positions:
        return
    chart(plot_hidden_changes(result, "How far each output moved (orange: its top prediction changed)"),
          "hide_changes")
    st.caption(f"{ROW_NOTE} Here the prediction is the intact model's; hover over a bar for the one with the tokens "
               "hidden.")
    record_table(result.rows)
    st.subheader("Attention with the tokens hidden")
    config = selection.checkpoint.config
    kinds = [k for k in prepared.kinds if k != "decoder"]  # the kinds that read the hidden tokens
    kind = url_radio("Attention", kinds, "attention") if len(kinds) > 1 else kinds[0]
    layer = url_selectbox("Layer", range(config.n_layers), "layer")
    stack = result.record.encoder if kind == "encoder" else result.record.decoder
    att = stack.layers[layer].cross_attention if kind == "cross" else stack.layers[layer].self_attention
    rows = prepared.query_labels(kind) if kind == "encoder" else result.hidden_row_labels
    chart(plot_head_grid(att, rows, prepared.key_labels(kind),
                         f"Layer {layer}: the hidden tokens' columns are masked (grey)"), "hide_heads")
    st.caption(LABEL_NOTE if kind == "encoder" else f"{ROW_NOTE} Here each row's prediction is the one with the "
               "tokens hidden.")


hide_token(selection, prepared)
