"""The Train page's settings: the task picker and the form, every setting bound to the URL.

    /train?tr_task=dates&tr_steps=800&tr_d_model=96     reopens the form with these settings

Choosing another task puts that task's defaults (TrainSettings.defaults) into every field. Values
out of range are not clamped by the widgets: TrainSettings.problems() refuses them with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explain.training import ATTENTION_KINDS, LEARNED_AT, POSITIONAL, TASK_NAMES, TASK_SPECS, TrainSettings

from .state import url_number_field, url_selectbox, url_toggle

TASK_KEY = "tr_task"


@dataclass(frozen=True)
class Field:
    """One number of the form: its TrainSettings field, label, URL key and step."""

    name: str
    label: str
    key: str
    step: int | float
    reversal_only: bool = False
    format: str | None = None


FIELDS = (
    Field("n", "n (symbols to reverse)", "tr_n", 1, True),
    Field("vocab", "vocabulary size", "tr_vocab", 1, True),
    Field("d_model", "d_model", "tr_d_model", 8),
    Field("n_heads", "heads H", "tr_n_heads", 1),
    Field("n_kv_heads", "K/V heads H_kv", "tr_n_kv_heads", 1),
    Field("n_layers", "layers", "tr_n_layers", 1),
    Field("lr", "learning rate", "tr_lr", 1e-3, format="%.4f"),
    Field("batch_size", "batch size", "tr_batch", 8),
    Field("steps", "steps (at most)", "tr_steps", 50),
    Field("seed", "seed", "tr_seed", 1),
)
CHOICES = {"pos_encoding": ("tr_pos", POSITIONAL), "attention": ("tr_attention", ATTENTION_KINDS)}
LATENT_KEY, NO_MASK_KEY, STOP_KEY = "tr_kv_latent", "tr_no_mask", "tr_stop_learned"


def _task_defaults() -> None:
    """The task picker's callback: every field forgets its value (widget and URL) and starts at the new task's default."""
    for key in [f.key for f in FIELDS] + [key for key, _ in CHOICES.values()] + [LATENT_KEY]:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)


def pick_task() -> str:
    """The task selectbox (outside the form, so that a change refills the form at once)."""
    return url_selectbox("Task", TASK_NAMES, TASK_KEY, on_change=_task_defaults,
                         help="; ".join(f"{name}: {spec.title}" for name, spec in TASK_SPECS.items()))


def settings_form(task: str) -> tuple[TrainSettings, bool]:
    """The form: (the settings it holds, whether Start was pressed)."""
    defaults = TrainSettings.defaults(task)
    values: dict[str, object] = {"task": task}
    with st.form("train_settings"):
        st.markdown(f"**Settings for {TASK_SPECS[task].title}** (the defaults learn in under a minute; with "
                    "*Stop when learned* on, the run ends as soon as they have)")
        shown = [f for f in FIELDS if task == "reversal" or not f.reversal_only]
        columns = st.columns(6)
        for i, f in enumerate(shown):
            values[f.name] = url_number_field(f.label, f.key, default=getattr(defaults, f.name), step=f.step,
                                              format=f.format, where=columns[i % 6])
        c = st.columns(4)
        values["pos_encoding"] = url_selectbox("positional encoding", POSITIONAL, "tr_pos", where=c[0],
                                               index=POSITIONAL.index(defaults.pos_encoding))
        if task == "reversal":
            values["attention"] = url_selectbox(
                "attention", ATTENTION_KINDS, "tr_attention", where=c[1],
                help="standard: MHA, GQA or MQA by the number of K/V heads; mla: keys and values come from one "
                     "latent vector per token (K/V heads are then ignored).")
            values["kv_latent_dim"] = url_number_field("MLA latent size", LATENT_KEY, default=defaults.kv_latent_dim,
                                                       step=8, where=c[2], help="The width of the latent c_KV.")
            values["causal"] = not url_toggle("Remove the causal mask", NO_MASK_KEY, where=c[3],
                                              help="Lets every position see the next token, i.e. its own answer.")
        values["stop_when_learned"] = url_toggle(
            "Stop when learned", STOP_KEY, default=True,
            help=f"End the run as soon as the {TASK_SPECS[task].metric_label} on fresh examples reaches "
                 f"{LEARNED_AT:.0%}. "
                 "Untick it to keep training for all the steps.")
        st.caption("Limits on this shared server: " + TrainSettings.limits_text())
        started = st.form_submit_button("Start training", type="primary")
    return TrainSettings(**values), started  # type: ignore[arg-type]  # numbers from the widgets
