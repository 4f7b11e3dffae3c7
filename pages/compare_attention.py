"""MHA vs GQA vs MQA: the same model trained three ways, side by side; a cache calculator; measured decode speed."""

import random

import streamlit as st

from app_lib.checkpoints import list_checkpoints, load_model
from app_lib.state import Selection, current_selection, url_radio, url_selectbox
from app_lib.tracing import traced
from app_lib.ui import chart, intro, page_fragment, record_table, show_notes
from explain.cache import attention_summary, calculate, preset, preset_rows
from explain.compare import evaluate_family, families, shared_layers
from explain.examples import default_text
from explain.inputs import code_span
from explain.labels import reversal_axis
from model.decode_speed import SpeedSetup, measure_decode_speed
from model.kv_math import DTYPE_BYTES, PRESETS
from viz.figures_compare import plot_cache_sizes, plot_decode_speed, plot_grouped_heads, plot_position_accuracy


def request(flag: str) -> None:
    """Button callback: remember the click (a callback's flag survives reruns that a button's value may not)."""
    st.session_state[flag] = True


def apply_preset() -> None:
    shape = preset(st.session_state["calc_preset"])
    if shape is not None:
        st.session_state.update(calc_layers=shape.n_layers, calc_heads=shape.n_heads, calc_kv=shape.n_kv_heads,
                                calc_dhead=shape.d_head, calc_context=shape.context)
        if shape.kv_latent_dim:
            st.session_state.update(calc_mla=True, calc_latent=shape.kv_latent_dim, calc_rope=shape.rope_dim)


selection = current_selection()
intro(
    "MHA vs GQA vs MQA",
    "Multi-head attention gives every query head its own keys and values. Grouped-query attention lets a group "
    "of query heads share one K/V head, and multi-query attention shares a single one among all. Fewer K/V heads "
    "mean fewer parameters and, above all, a smaller KV cache; the question is what it costs in quality.",
    r"\text{query head } h \text{ reads K/V head } \lfloor h / (H / H_{kv}) \rfloor, \qquad "
    r"\text{cache per token} = 2 \cdot n_{layers} \cdot H_{kv} \cdot d_{head} \cdot \text{bytes}; \quad "
    r"\text{MLA: } n_{layers} \cdot (d_c + d_R) \cdot \text{bytes}",
)


@page_fragment("compare_attention")
def family_comparison(selection: Selection) -> None:
    """Section 1: a family, layer or evaluation change reruns only this (app_lib.ui.page_fragment)."""
    names = [e.name for e in list_checkpoints() if e.source == "shipped" and e.error is None]
    found = families(names)
    st.header("1. The same task, three kinds of attention")
    if not found:
        st.info("No family of shipped models to compare (e.g. reversal-mha, reversal-gqa, reversal-mqa).")
        return
    by_name = {f.name: f for f in found}
    current = next((f for f in found if selection.entry.name in f.members), found[0])
    family = by_name[url_radio("Models", list(by_name), "cmp_family", index=found.index(current),
                               captions=[", ".join(f.members) for f in found])]
    checkpoints = {n: load_model(n) for n in family.members}
    own_input = selection.entry.name in family.members
    text = selection.text if own_input else default_text(checkpoints[family.members[0]])
    st.markdown(f"All models read the same input: {code_span(text)}" + ("" if own_input else
                " (the sidebar's model is not in this family, so its example input is used)."))
    record_table([attention_summary(n, c.config, c.model.num_parameters) for n, c in checkpoints.items()],
                 transpose=True, index="model")

    layer = url_selectbox("Layer", range(shared_layers(checkpoints.values())), "cmp_layer")
    for n, c in checkpoints.items():
        prepared = traced(n, text)
        show_notes([note for note in prepared.notes if note.level == "error"])
        if prepared.ok:
            chart(plot_grouped_heads(prepared.attention("self")[layer], prepared.labels,
                                     f"{n}: layer {layer}, {c.config.n_heads} query heads over "
                                     f"{c.config.n_kv_heads} K/V head(s)"), f"heads_{n}")
    st.caption("Query heads on one coloured band read the same keys and values (masked cells show the band's "
               "colour). With one K/V head for all, MQA's heads can still attend differently: their queries differ.")

    st.subheader("Quality on fresh data")
    st.markdown("Measured now on sequences the models never saw, not read from their files.")
    st.button("Evaluate the models", key="cmp_evaluate", on_click=request, args=("cmp_evaluate_now",))
    if st.session_state.pop("cmp_evaluate_now", False):
        with st.spinner("Evaluating..."):
            st.session_state["cmp_quality"] = evaluate_family(family, checkpoints, random.randrange(1_000_000))
    quality = st.session_state.get("cmp_quality")
    if quality is None or quality.members != family.members:
        return
    for failed in quality.failed:
        st.error(f"{failed.name}: {failed.error}")
    if quality.n is not None and quality.measured:
        chart(plot_position_accuracy(quality), "quality_by_position")
        st.caption(reversal_axis(quality.n, quality.chance).note)
        st.caption(f"Fresh sequences from seed {quality.seed}. " + " · ".join(
            f"{r.name}: reversed half {r.second_half:.1%}" for r in quality.measured))
    elif quality.measured:
        record_table(quality.language_rows(), index="model")


@page_fragment("compare_attention")
def cache_calculator() -> None:
    """Section 2: the calculator's numbers rerun only this."""
    st.header("2. Cache-size calculator")
    st.markdown("Published model shapes, typed in from their papers and configs; change any number.")
    record_table(preset_rows())

    for widget, start in {"calc_preset": "Llama-2-70B (GQA)", "calc_layers": 80, "calc_heads": 64, "calc_kv": 8,
                          "calc_dhead": 128, "calc_context": 4096, "calc_batch": 1, "calc_latent": 512,
                          "calc_rope": 64, "calc_mla": False}.items():
        st.session_state.setdefault(widget, start)  # set once here, so presets can change them without a warning
    st.selectbox("Preset", ["custom", *PRESETS], key="calc_preset", on_change=apply_preset)
    cols = st.columns(7)
    layers = cols[0].number_input("layers", 1, 200, key="calc_layers")
    heads = cols[1].number_input("heads H", 1, 256, key="calc_heads")
    kv = cols[2].number_input("K/V heads (GQA)", 1, 256, key="calc_kv")
    d_head = cols[3].number_input("d_head", 1, 1024, key="calc_dhead")
    context = cols[4].number_input("context T", 1, 2_000_000, key="calc_context")
    batch = cols[5].number_input("batch B", 1, 4096, key="calc_batch")
    dtype = cols[6].selectbox("dtype", list(DTYPE_BYTES), index=1, key="calc_dtype")
    mla_cols = st.columns([2, 1, 1])
    mla = mla_cols[0].toggle("Add MLA (latent attention)", key="calc_mla",
                             help="the DeepSeek presets turn it on with their own sizes")
    latent = mla_cols[1].number_input("MLA latent d_c", 1, 65536, key="calc_latent", disabled=not mla,
                                      help="multi-head latent attention caches this many numbers per token and layer")
    rope = mla_cols[2].number_input("MLA rotary key d_R", 0, 4096, key="calc_rope", disabled=not mla,
                                    help="plus the decoupled rotary key shared by all heads")
    results = calculate(layers, heads, kv, d_head, context, batch, dtype, latent=(latent, rope) if mla else None)
    for column, result in zip(st.columns(len(results)), results):
        column.metric(result.label, result.total_text, result.per_token_text, delta_color="off", delta_arrow="off")
    chart(plot_cache_sizes(results, context), "cache_calculator")
    deepseek = PRESETS["DeepSeek-V3 (MLA)"]
    st.caption("A 7B model's weights take about 13 GiB in float16: at long contexts and large batches, an MHA cache "
               "outgrows the model itself. That is why Llama-2-70B and Mistral use GQA, and Falcon MQA. DeepSeek-V2 "
               f"and V3 keep every head's own keys and values but cache only a latent of {deepseek.kv_latent_dim} "
               f"numbers plus a rotary key of {deepseek.rope_dim} per token and layer (multi-head latent attention), "
               "projecting K and V up from the latent when they are needed.")


@page_fragment("compare_attention")
def decode_speed() -> None:
    """Section 3: measuring reruns only this."""
    st.header("3. Decode speed, measured here")
    setup = SpeedSetup()
    st.markdown(f"Three fresh models of the same size (d_model {setup.d_model}, {setup.n_heads} heads, "
                f"{setup.n_layers} layers) with {', '.join(map(str, setup.kv_heads))} K/V heads generate "
                f"{setup.new_tokens} tokens for a batch of {setup.batch} after contexts of "
                f"{', '.join(map(str, setup.contexts))} tokens.")
    st.button("Measure decode speed", key="cmp_speed", on_click=request, args=("cmp_speed_now",))
    if st.session_state.pop("cmp_speed_now", False):
        bar = st.progress(0.0, "measuring...")
        for progress in measure_decode_speed(setup):
            bar.progress(progress.fraction, f"timing {progress.done} of {progress.total}")
        st.session_state["cmp_speed_points"] = progress.points
    if st.session_state.get("cmp_speed_points"):
        chart(plot_decode_speed(st.session_state["cmp_speed_points"]), "decode_speed")
    st.markdown(
        "**When is MQA faster?** A decode step must read every cached key and value from memory. On a GPU serving "
        "a large model with long contexts and big batches, that read is the bottleneck (decoding is *memory-bound*), "
        "so a cache H/H_kv times smaller makes each step up to that much faster and lets many more sequences fit. "
        "**When is it not?** For tiny models on a CPU, like these, a step costs mostly Python overhead and the weight "
        "matrix products; the cache is a few megabytes that stay in the processor's cache, so the three lines come "
        "out close together, and timing noise from other programs can reorder them."
    )


family_comparison(selection)
cache_calculator()
decode_speed()
