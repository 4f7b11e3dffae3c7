"""KV cache and generation: prefill, then one token at a time, with the cache growing after every step."""

import streamlit as st

from app_lib.checkpoints import version_of
from app_lib.inputs import code_span, read_input
from app_lib.state import current_selection
from app_lib.tracing import display_token, token_labels
from app_lib.ui import chart, intro, page_fragment, show_notes
from model.generation_trace import session_for
from model.kv_math import attention_kind, cache_bytes, format_bytes
from viz.figures_generation import (
    plot_cache_growth,
    plot_cache_tensors,
    plot_decode_row,
    plot_next_token,
    plot_prefill_scores,
    plot_step_times,
)

SESSION_KEY = "_tp_kv_session"
selection = current_selection()
intro(
    "KV cache and generation",
    "A GPT writes one token at a time. At each step the newest token needs the keys and values of every earlier "
    "token, which never change once computed, so they are kept in a cache: the prompt fills it in one pass "
    "(the *prefill*), and each *decode* step adds one row per layer. Press **Next token** and watch it grow. "
    "An encoder-decoder caches its decoder's tokens the same way, plus the encoder's keys and values once.",
    r"\text{cache bytes} = 2 \cdot n_{layers} \cdot H_{kv} \cdot d_{head} \cdot T \cdot B \cdot \text{bytes per number}",
)
checkpoint, name = selection.checkpoint, selection.entry.name
config, tokenizer = checkpoint.config, checkpoint.tokenizer
model_input = read_input(checkpoint, selection.text)
show_notes([n for n in model_input.notes if n.level == "error"])
if not model_input.ok:
    st.stop()
seq2seq = checkpoint.architecture == "transformer"

controls = st.columns([2, 2, 1, 1])
temperature = controls[0].slider("Temperature (0 = greedy)", 0.0, 2.0, 0.0, 0.1, key="kv_temperature")
top_k = controls[1].number_input("Top-k (0 = all tokens)", 0, tokenizer.vocab_size, 0, key="kv_top_k")
autoplay = controls[3].toggle("Autoplay", key="kv_autoplay")
key = (name, version_of(name), model_input.ids)
controls[2].button("Reset", key="kv_reset", help="Start again from the prompt.",
                   on_click=lambda: st.session_state.pop(SESSION_KEY, None))
if st.session_state.get(SESSION_KEY, (None,))[0] != key:
    session = session_for(checkpoint, model_input.ids)
    session.step(temperature, top_k or None)  # the prefill
    st.session_state[SESSION_KEY] = (key, session)
session = st.session_state[SESSION_KEY][1]


def advance() -> None:
    if not session.finished:
        session.step(temperature, top_k or None)


# A fragment: "Next token", the layer and the autoplay timer rerun only this part of the page
# (app_lib.ui.page_fragment, here with its timer); the controls above change the whole page.
@page_fragment("kv_cache", run_every=0.8 if autoplay and not session.finished else None)
def generation_view() -> None:
    """The generation so far, one step's attention and the cache; reruns on its own at each step."""
    if autoplay and not session.finished:
        advance()
        if session.finished:
            st.rerun()  # turns the timer off and the Next button's state with it
    steps, last = session.steps, session.steps[-1]
    vocabulary = [display_token(t) for t in tokenizer.tokens]
    fed_tokens = [tokenizer.id_to_token(i) for i in session.tokens[: session.fed]]
    labels = token_labels(fed_tokens)
    source = f"Source {code_span(tokenizer.decode(list(session.source_ids)))} · " if seq2seq else ""
    new_text = " ".join(code_span(display_token(tokenizer.id_to_token(i))) for i in session.generated)
    step_row = st.columns([1, 5], vertical_alignment="center")
    step_row[0].button("Next token", on_click=advance, type="primary", key="kv_next", disabled=session.finished,
                       width="stretch")
    step_row[1].markdown(f"{source}**Step {last.index}** ({last.kind}) · generated so far: {new_text or '-'}"
                         + (" · **finished** (context full or end token)" if session.finished else ""))
    chart(plot_next_token(last.probabilities, vocabulary, last.chosen,
                          title=f"Step {last.index}: the next token is drawn from"), "next_token")

    layer = st.selectbox("Layer", range(config.n_layers), key="kv_layer")
    layer_step = last.layers[layer]
    prefill = steps[0]
    prompt_labels = labels[prefill.start : prefill.start + prefill.query_length]
    if prefill.query_length > 1:
        chart(plot_prefill_scores(prefill.layers[layer].scaled_scores, prefill.mask, prompt_labels, layer),
              "prefill_scores")
        st.caption("Prefill: the prompt's tokens are queries all at once, so query i must be kept from keys "
                   "after it in the same pass: the causal mask (grey) is needed here, exactly as in training.")
    else:
        st.caption("The decoder starts from the single start token, so its prefill is one query: no mask.")
    if last.kind == "decode":
        chart(plot_decode_row(layer_step.weights, labels, labels[-1], layer), "decode_row")
        st.caption("Decode: one query (the newest token) over every cached key. All of them are in its past, "
                   "so the mask row would be all allowed: no mask is applied, and none is needed.")
    else:
        st.info("Press **Next token** for the first decode step: one new query row over the cached keys.")
    if layer_step.cross_weights is not None:
        source_labels = token_labels([tokenizer.id_to_token(i) for i in session.source_ids])
        chart(plot_decode_row(layer_step.cross_weights, source_labels, labels[-1], layer, "Cross-attention"),
              "cross_row")
        st.caption("Cross-attention reads the encoder's keys and values, computed once from the source at the "
                   "prefill and cached: later steps only add their query.")

    st.subheader("The cache")
    b, hkv, t, dh = session.cache_shape()
    st.markdown(f"Each of the {config.n_layers} layers caches K and V shaped **(B={b}, H_kv={hkv}, T={t}, "
                f"d_head={dh})**: only the {hkv} key/value head(s), not the {config.n_heads} query heads "
                f"({attention_kind(config.n_heads, hkv)}). Self-attention cache now "
                f"{format_bytes(last.cache_bytes)} = 2 × {config.n_layers} × {hkv} × {dh} × {t} × 1 × 4 bytes."
                + (f" The cross-attention cache (the encoder's K/V, filled once) adds "
                   f"{format_bytes(last.cross_cache_bytes)}." if seq2seq else ""))
    chart(plot_cache_tensors(session.cache_keys(layer), session.cache_values(layer), labels, layer,
                             new_rows=last.query_length), "cache_tensors")
    variants = {"MHA": config.n_heads, "GQA": max(2, config.n_heads // 2), "MQA": 1}
    predicted = {f"{kind} ({kv} K/V heads)": [cache_bytes(config.n_layers, kv, dh, s.cache_length) for s in steps]
                 for kind, kv in variants.items() if config.n_heads % kv == 0}
    chart(plot_cache_growth([s.index for s in steps], [s.cache_bytes for s in steps], predicted, name),
          "cache_growth")

    st.subheader("With and without the cache")
    chart(plot_step_times([s.cache_length for s in steps], [1e3 * s.cached_seconds for s in steps],
                          [1e3 * s.uncached_seconds for s in steps]), "step_times")
    same = all(s.same_token for s in steps)
    worst = max(s.uncached_max_diff for s in steps)
    (st.success if same else st.error)(
        f"Recomputing the whole sequence at every step (no cache) gives the {'same' if same else 'DIFFERENT'} next "
        f"token at all {len(steps)} steps; the largest probability difference is {worst:.1e}.")
    st.caption("Without a cache each step processes all T tokens again, so its cost grows with T; with the cache "
               "a step processes one token. For models this small, fixed Python overhead per call hides much of "
               "the gap: the uncached line rises clearly only with long inputs (try a Shakespeare model). These are "
               "real timings on a shared server: a lone spike means something else was busy at that moment.")


generation_view()
