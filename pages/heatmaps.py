"""Attention heatmaps: every head of a layer (or of all layers), and bertviz's head and model views."""

import streamlit as st

from app_lib.bertviz_views import bertviz_views
from app_lib.padding_view import padding_section
from app_lib.state import Selection, current_selection, url_radio, url_selectbox, url_toggle
from app_lib.ui import chart, html_frame, intro, page_fragment, traced_input
from explain.labels import LABEL_NOTE, ROW_NOTE
from explain.trace import ATTENTION_KINDS, PreparedTrace
from viz.figures import plot_attention_weights, plot_head_grid, plot_layer_grid

selection = current_selection()
intro(
    "Attention heatmaps",
    "Each heatmap is one head's attention weights: a row per query token, a column per key token, darker "
    "where the query takes more of that key's value. Heads of the same layer learn different patterns "
    "(the previous token, the mirrored position, the first token...). Grey cells are masked.",
    ((r"A^{(\ell, h)} = \mathrm{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{d_{head}}} + M\right) "
      r"\in \mathbb{R}^{T \times T_k},"), r"\ell = 0 \dots n_{layers}-1,\ h = 0 \dots H-1"),
)
prepared = traced_input(selection)


@page_fragment("heatmaps")
def heatmaps(selection: Selection, prepared: PreparedTrace) -> None:
    """Everything below the input: a layer or head change reruns only this (app_lib.ui.page_fragment)."""
    config = selection.checkpoint.config
    kind = url_radio("Attention", prepared.kinds, "attention") if len(prepared.kinds) > 1 else prepared.kinds[0]
    about = ATTENTION_KINDS[kind]
    st.caption(f"{about.title}: queries from {about.queries_from}, keys and values from {about.keys_from}. "
               + (ROW_NOTE if kind != "encoder" else LABEL_NOTE))
    if kind == "cross":
        st.caption("A row is one step of writing the answer: the decoder's input at that position (the start token "
                   "<s> first, then each character already written) and the character written next from there. "
                   f"Row {prepared.query_labels(kind)[0]} shows which source characters were read to write the "
                   "first character of the answer; each written character then comes back as the next row's input.")
    columns = st.columns(3)
    layer = url_selectbox("Layer", range(config.n_layers), "layer", where=columns[0])
    head = url_selectbox("Head", range(config.n_heads), "head", where=columns[1])
    all_layers = url_toggle("Show all layers", "all_layers", where=columns[2])
    attentions = prepared.attention(kind)
    q_labels, k_labels = prepared.query_labels(kind), prepared.key_labels(kind)

    chart(plot_head_grid(attentions[layer], q_labels, k_labels,
                         f"Layer {layer}: all {config.n_heads} heads (head {head} in orange)", highlight_head=head),
          "layer_heads")
    chart(plot_attention_weights(attentions[layer], head, q_labels, k_labels, f"Layer {layer}, head {head}"),
          "one_head")
    with st.container():  # always there, so the toggle does not shift (and redraw) the views below
        if all_layers:
            chart(plot_layer_grid(attentions, q_labels, k_labels,
                                  f"All {config.n_layers} layers × {config.n_heads} heads"), "all_layers")
    padding_section(selection, prepared, kind, layer, head)

    st.subheader("bertviz: the same attention as lines")
    views = bertviz_views(selection.entry.name, selection.text, layer, head, kind)
    st.markdown("**Head view.** Hover over a token to see where it looks; the colours are heads (click the squares "
                "to switch heads on and off), the layer menu changes layer. "
                + ("The *Attention* menu switches between encoder, decoder and cross-attention."
                   if prepared.architecture == "transformer" else ""))
    html_frame(views.head_frame)
    # The HTML is handed over when the button is pressed (a callable), not stored per session and run:
    # inside this fragment, stored files raced with its reruns (a 404 in the load test), and each
    # student's copy took memory.
    st.download_button("Download the head view (HTML, works offline)", lambda views=views: views.head_html,
                       file_name=f"{views.file_stem}-head-view.html", mime="text/html", icon=":material/download:",
                       on_click="ignore")
    st.markdown("**Model view.** Every layer (rows) and head (columns) at once; click a thumbnail to enlarge it.")
    html_frame(views.model_frame)
    st.download_button("Download the model view (HTML, works offline)", lambda views=views: views.model_html,
                       file_name=f"{views.file_stem}-model-view.html", mime="text/html", icon=":material/download:",
                       on_click="ignore")


heatmaps(selection, prepared)
