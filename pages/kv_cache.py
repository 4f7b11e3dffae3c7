"""KV cache and generation: prefill, then one token at a time, with the cache growing after every step."""

import streamlit as st

from app_lib.checkpoints import version_of
from app_lib.state import current_selection, url_float_slider, url_number_input, url_selectbox, url_toggle
from app_lib.ui import chart, intro, page_fragment, show_notes
from explain.generation import (
    cache_tensors,
    generation_view,
    next_token_choice,
    settings_from_controls,
    step_with,
    suppression_note,
)
from explain.inputs import code_span, read_input
from explain.labels import LABEL_NOTE, ROW_NOTE, VOCABULARY_NOTE
from explain.rope import latent_cache_rows
from model.generation_trace import session_for
from viz.figures_generation import (
    plot_cache_growth,
    plot_cache_tensors,
    plot_decode_row,
    plot_next_token,
    plot_prefill_scores,
    plot_step_times,
)
from viz.figures_rope import plot_latent_cache

SESSION_KEY = "_tp_kv_session"
selection = current_selection()
intro(
    "KV cache and generation",
    "A GPT writes one token at a time. At each step the newest token needs the keys and values of every earlier "
    "token, which never change once computed, so they are kept in a cache: the prompt fills it in one pass "
    "(the *prefill*), and each *decode* step adds one row per layer. Press **Next token** and watch it grow. "
    "An encoder-decoder caches its decoder's tokens the same way, plus the encoder's keys and values once. "
    "Temperature 0 always takes the most likely token (greedy); above 0 the token is drawn at random, from the "
    "*k* most likely (top-k) and the fewest most likely whose probabilities add up to *p* (top-p).",
    r"\text{cache bytes} = 2 \cdot n_{layers} \cdot H_{kv} \cdot d_{head} \cdot T \cdot B \cdot \text{bytes per number}",
)
checkpoint, name = selection.checkpoint, selection.entry.name
config, tokenizer = checkpoint.config, checkpoint.tokenizer
model_input = read_input(checkpoint, selection.text)
show_notes([n for n in model_input.notes if n.level == "error"])
if not model_input.ok:
    st.stop()

controls = st.columns(3)
temperature = url_float_slider("Temperature (0 = greedy)", "kv_temperature", min_value=0.0, max_value=2.0,
                               default=0.0, step=0.1, where=controls[0])
top_k = url_number_input("Top-k (0 = all tokens)", "kv_top_k", min_value=0, max_value=tokenizer.vocab_size, default=0,
                         where=controls[1])
top_p = url_float_slider("Top-p (1 = all tokens)", "kv_top_p", min_value=0.05, max_value=1.0, default=1.0, step=0.05,
                         where=controls[2],
                         help="Keep the fewest most likely tokens whose probabilities add up to at least p.")
options = st.container(horizontal=True, vertical_alignment="center")
never_special = url_toggle("Never generate special tokens", "kv_never_special", default=True, where=options)
autoplay = options.toggle("Autoplay", key="kv_autoplay")
st.caption(suppression_note(tokenizer) + " This page writes with the settings above (greedy at temperature 0); the "
           "continuation other pages show under the input uses the task's own settings, so the two can differ.")
settings = settings_from_controls(temperature, top_k, top_p, never_special, tokenizer)
key = (name, version_of(name), model_input.ids)
options.button("Reset", key="kv_reset", help="Start again from the prompt.",
                  on_click=lambda: st.session_state.pop(SESSION_KEY, None))
if st.session_state.get(SESSION_KEY, (None,))[0] != key:
    session = session_for(checkpoint, model_input.ids)
    step_with(session, settings)  # the prefill
    st.session_state[SESSION_KEY] = (key, session)
session = st.session_state[SESSION_KEY][1]


def advance() -> None:
    if not session.finished:
        step_with(session, settings)


# A fragment: "Next token", the layer and the autoplay timer rerun only this part of the page
# (app_lib.ui.page_fragment, here with its timer); the controls above change the whole page.
@page_fragment("kv_cache", run_every=0.8 if autoplay and not session.finished else None)
def generation_section() -> None:
    """The generation so far, one step's attention and the cache; reruns on its own at each step."""
    if autoplay and not session.finished:
        advance()
        if session.finished:
            st.rerun()  # turns the timer off and the Next button's state with it
    view = generation_view(checkpoint, session)
    last, labels = view.last, list(view.labels)
    source = f"Source {code_span(view.source_text)} · " if view.source_text is not None else ""
    new_text = " ".join(code_span(token) for token in view.generated)
    step_row = st.container(horizontal=True, vertical_alignment="center")
    step_row.button("Next token", on_click=advance, type="primary", key="kv_next", disabled=session.finished)
    step_row.markdown(f"{source}**Step {last.index}** ({last.kind}) · generated so far: {new_text or '-'}"
                         + (f" · as text: {code_span(view.generated_text)}" if view.generated else "")
                         + (" · **finished** (context full or end token)" if view.finished else ""))
    choice = next_token_choice(last, settings, view.vocabulary)  # redrawn from the step's logits, no model run
    chart(plot_next_token(choice.probabilities, view.vocabulary, choice.chosen, title=choice.title, kept=choice.kept,
                          drawn=choice.drawn), "next_token")
    st.caption(f"{choice.summary} {VOCABULARY_NOTE}")

    layer = url_selectbox("Layer", range(config.n_layers), "kv_layer")
    layer_step = last.layers[layer]
    prefill = view.prefill
    if prefill.query_length > 1:
        chart(plot_prefill_scores(prefill.layers[layer].scaled_scores, prefill.mask, view.prompt_labels, layer,
                                  view.prefill_row_labels), "prefill_scores")
        st.caption("Prefill: the prompt's tokens are queries all at once, so query i must be kept from keys "
                   "after it in the same pass: the causal mask (grey) is needed here, exactly as in training. "
                   f"{ROW_NOTE} The prefill's rows are all prompt: the last row's prediction is the most likely first "
                   "token to generate.")
    else:
        st.caption("The decoder starts from the single start token, so its prefill is one query: no mask.")
    if last.kind == "decode":
        chart(plot_decode_row(layer_step.weights, labels, view.newest_row_label, layer), "decode_row")
        st.caption("Decode: one query (the newest token) over every cached key. All of them are in its past, "
                   f"so the mask row would be all allowed: no mask is applied, and none is needed. {LABEL_NOTE}")
    else:
        st.info("Press **Next token** for the first decode step: one new query row over the cached keys.")
    if layer_step.cross_weights is not None:
        chart(plot_decode_row(layer_step.cross_weights, view.source_labels, view.newest_row_label, layer,
                              "Cross-attention"), "cross_row")
        st.caption("Cross-attention reads the encoder's keys and values, computed once from the source at the "
                   "prefill and cached: later steps only add their query.")

    st.subheader("The cache")
    cache = view.cache
    if cache.variant == "MLA":
        st.markdown(f"Each of the {cache.n_layers} layers caches one row per token: the latent c_KV "
                    f"({cache.kv_latent_dim} numbers) and the rotary key ({cache.rope_dim}), the same for all "
                    f"{cache.n_heads} heads, which project their keys and values up from the latent when they "
                    f"attend (multi-head latent attention). Self-attention cache now {cache.formula}.")
        chart(plot_latent_cache(latent_cache_rows(session, layer, cache.kv_latent_dim), labels), "cache_tensors")
    else:
        st.markdown(f"Each of the {cache.n_layers} layers caches K and V shaped **(B={cache.batch}, "
                    f"H_kv={cache.n_kv_heads}, T={cache.tokens}, d_head={cache.d_head})**: only the "
                    f"{cache.n_kv_heads} key/value head(s), not the {cache.n_heads} query heads ({cache.variant}). "
                    f"Self-attention cache now {cache.formula}."
                    + (f" The cross-attention cache (the encoder's K/V, filled once) adds "
                       f"{view.cross_cache_text}." if view.cross_cache_bytes is not None else ""))
        keys, values = cache_tensors(session, layer)
        chart(plot_cache_tensors(keys, values, labels, layer, new_rows=last.query_length), "cache_tensors")
    st.caption(f"One row per cached token, one column per dimension of the head. {LABEL_NOTE}")
    chart(plot_cache_growth(view.step_indices, view.measured_bytes, view.curves, name), "cache_growth")
    st.caption("Measured bytes of this model's cache (solid) and the formula for the MHA, GQA and MQA versions of "
               "its shape, and for an MLA model its latent cache (dashed), in binary units (KiB, MiB) as in the text "
               "above.")

    st.subheader("With and without the cache")
    chart(plot_step_times(view.cache_lengths, view.cached_ms, view.uncached_ms), "step_times")
    same = view.same_token_everywhere
    (st.success if same else st.error)(
        f"Recomputing the whole sequence at every step (no cache) gives the {'same' if same else 'DIFFERENT'} next "
        f"token at all {len(view.steps)} steps; the largest probability difference is {view.largest_difference:.1e}.")
    st.caption("Without a cache each step runs the model over all T tokens again, so its work grows with T; with "
               "the cache a step runs it over one token. On models this small the work of a step is tiny next to "
               "the fixed cost of calling the model (Python and PyTorch overhead, the same at every length), so "
               "both lines stay close and flat at these lengths: the gain shows only at long lengths and in "
               "large models, where the work dominates. These are real timings on a shared server: a lone spike "
               "means something else was busy at that moment.")


generation_section()
