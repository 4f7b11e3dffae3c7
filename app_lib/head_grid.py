"""The heads-off grid: one checkbox per (kind, layer, head), bound to the URL, with whole-layer shortcuts.

Each checkbox's URL key names its head, so a teacher's link switches heads off:

    /heads_off?checkpoint=reversal-mha&off_L1_H2=true          layer 1 head 2 off (a GPT)
    /heads_off?checkpoint=dates&off_cross_L0_H3=true           cross-attention layer 0 head 3 off

A key for a head the model does not have (off_L7_H9), or a value other than true/false, gets a
visible note naming it and is ignored.
"""

from __future__ import annotations

import re

import streamlit as st

from explain.experiments import HeadMaskChoice, HeadRef, head_choice
from explain.inputs import code_span
from model import LoadedCheckpoint

KEY_PATTERN = re.compile(r"off_(?:(encoder|decoder|cross)_)?L(-?\d+)_H(-?\d+)")
KIND_TITLES = {"self": "Self-attention", "encoder": "Encoder self-attention", "decoder": "Decoder self-attention",
               "cross": "Cross-attention"}


def head_key(ref: HeadRef) -> str:
    """The URL key of a head's checkbox."""
    kind = "" if ref.kind == "self" else f"{ref.kind}_"
    return f"off_{kind}L{ref.layer}_H{ref.head}"


def _set(keys: list[str], value: bool) -> None:
    for key in keys:
        st.session_state[key] = value


def _warn_bad_links(choice: HeadMaskChoice) -> None:
    """A note for each off_... URL key that is not a head of this model, or whose value is not true/false."""
    known = {head_key(ref) for kind in choice.kinds for layer in range(choice.n_layers)
             for ref in choice.layer_heads(kind, layer)}
    for key in st.query_params:
        if not key.startswith("off_"):
            continue
        raw = st.query_params.get(key)
        if key not in known:
            st.warning(f"The link asks to switch off {code_span(key[:60])}, which is not a head of this model "
                       f"({', '.join(choice.kinds)}; layers 0 to {choice.n_layers - 1}, heads 0 to "
                       f"{choice.n_heads - 1}); it is ignored.")
        elif raw is not None and raw.lower() not in ("true", "false"):
            st.warning(f"The link gives {code_span(key)} the value {code_span(raw[:40])}, which is not true or "
                       "false; that head stays on.")


def head_grid(checkpoint: LoadedCheckpoint) -> HeadMaskChoice:
    """Draw the grid and return the heads switched off."""
    choice = head_choice(checkpoint)
    _warn_bad_links(choice)
    off: list[HeadRef] = []
    every_key = [head_key(ref) for kind in choice.kinds for layer in range(choice.n_layers)
                 for ref in choice.layer_heads(kind, layer)]
    for kind in choice.kinds:
        if len(choice.kinds) > 1:
            st.markdown(f"**{KIND_TITLES[kind]}**")
        for layer in range(choice.n_layers):
            refs = choice.layer_heads(kind, layer)
            keys = [head_key(ref) for ref in refs]
            columns = st.columns([1] * choice.n_heads + [2, 2])
            for column, ref, key in zip(columns, refs, keys):
                if column.checkbox(f"L{layer} H{ref.head}", key=key, bind="query-params",
                                   help=f"Switch off {ref.label}"):
                    off.append(ref)
            columns[-2].button(f"All heads of layer {layer} off", key=f"layer_off_{kind}_{layer}",
                               on_click=_set, args=(keys, True))
            columns[-1].button(f"Layer {layer} back on", key=f"layer_on_{kind}_{layer}",
                               on_click=_set, args=(keys, False))
    st.button("Every head back on", key="heads_all_on", on_click=_set, args=(every_key, False))
    return choice.with_off(tuple(off))
