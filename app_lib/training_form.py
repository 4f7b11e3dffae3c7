"""The Train page's settings: the task picker and the form, every setting bound to the URL.

    /train?tr_task=dates&tr_steps=800&tr_d_model=96     reopens the form with these settings

Choosing another task puts that task's defaults (TrainSettings.defaults) into every field. The task and
the attention pickers sit outside the form, so a change shows the fields that apply at once (MLA's latent
size for MLA only). Values out of range are not clamped by the widgets: TrainSettings.problems() refuses
them with the reason. The save form after a run is here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explain.training import ATTENTION_KINDS, LEARNED_AT, POSITIONAL, TASK_NAMES, TASK_SPECS, TrainSettings
from model import CheckpointError

from .sidebar import select_checkpoint
from .state import url_number_field, url_selectbox, url_toggle
from .training_job import TrainingJob
from .user_models import NameTakenError, NotYoursError, user_entry_name

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
    standard_only: bool = False  # MHA/GQA/MQA only: MLA's keys and values have no K/V head count


def applies(f: Field, task: str, attention: str) -> bool:
    """Whether the form shows field `f` for this task and kind of attention (a hidden field keeps its default)."""
    return (task == "reversal" or not f.reversal_only) and (attention == "standard" or not f.standard_only)


FIELDS = (
    Field("n", "n (symbols to reverse)", "tr_n", 1, True),
    Field("vocab", "vocabulary size", "tr_vocab", 1, True),
    Field("d_model", "d_model", "tr_d_model", 8),
    Field("n_heads", "heads H", "tr_n_heads", 1),
    Field("n_kv_heads", "K/V heads H_kv", "tr_n_kv_heads", 1, standard_only=True),
    Field("n_layers", "layers", "tr_n_layers", 1),
    Field("lr", "learning rate", "tr_lr", 1e-3, format="%.4f"),
    Field("batch_size", "batch size", "tr_batch", 8),
    Field("steps", "steps (at most)", "tr_steps", 50),
    Field("seed", "seed", "tr_seed", 1),
)
CHOICES = {"pos_encoding": ("tr_pos", POSITIONAL), "attention": ("tr_attention", ATTENTION_KINDS)}
LATENT_KEY, NO_MASK_KEY, STOP_KEY = "tr_kv_latent", "tr_no_mask", "tr_stop_learned"
ATTENTION_KEY = CHOICES["attention"][0]


def _task_defaults() -> None:
    """The task picker's callback: every field forgets its value (widget and URL) and starts at the new task's default."""
    for key in [f.key for f in FIELDS] + [key for key, _ in CHOICES.values()] + [LATENT_KEY]:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)


def pick_task() -> str:
    """The task selectbox (outside the form, so that a change refills the form at once)."""
    return url_selectbox("Task", TASK_NAMES, TASK_KEY, on_change=_task_defaults,
                         help="; ".join(f"{name}: {spec.title}" for name, spec in TASK_SPECS.items()))


def pick_attention(task: str) -> str:
    """The kind of attention (outside the form: a change shows or hides MLA's field at once); reversal only."""
    if task != "reversal":
        return TrainSettings.defaults(task).attention
    return url_selectbox("Attention", ATTENTION_KINDS, ATTENTION_KEY,
                         help="standard: MHA, GQA or MQA by the number of K/V heads; mla: keys and values come "
                              "from one latent vector per token (multi-head latent attention).")


def settings_form(task: str) -> tuple[TrainSettings, bool]:
    """The attention picker and the form: (the settings they hold, whether Start was pressed)."""
    defaults = TrainSettings.defaults(task)
    values: dict[str, object] = {"task": task, "attention": pick_attention(task)}
    with st.form("train_settings"):
        st.markdown(f"**Settings for {TASK_SPECS[task].title}** (the defaults learn in under a minute; with "
                    "*Stop when learned* on, the run ends as soon as they have)")
        shown = [f for f in FIELDS if applies(f, task, values["attention"])]
        columns = st.columns(6)
        for i, f in enumerate(shown):
            values[f.name] = url_number_field(f.label, f.key, default=getattr(defaults, f.name), step=f.step,
                                              format=f.format, where=columns[i % 6])
        slots = iter(st.columns(3))  # left to right, no gap where a field does not apply
        values["pos_encoding"] = url_selectbox("positional encoding", POSITIONAL, "tr_pos", where=next(slots),
                                               index=POSITIONAL.index(defaults.pos_encoding))
        if values["attention"] == "mla":
            values["kv_latent_dim"] = url_number_field("MLA latent size", LATENT_KEY, default=defaults.kv_latent_dim,
                                                       step=8, where=next(slots), help="The width of the latent c_KV.")
        if task == "reversal":
            values["causal"] = not url_toggle("Remove the causal mask", NO_MASK_KEY, where=next(slots),
                                              help="Lets every position see the next token, i.e. its own answer.")
        values["stop_when_learned"] = url_toggle(
            "Stop when learned", STOP_KEY, default=True,
            help=f"End the run as soon as the {TASK_SPECS[task].metric_label} on fresh examples reaches "
                 f"{LEARNED_AT:.0%}. "
                 "Untick it to keep training for all the steps.")
        st.caption("Limits on this shared server: " + TrainSettings.limits_text())
        started = st.form_submit_button("Start training", type="primary")
    return TrainSettings(**values), started  # type: ignore[arg-type]  # numbers from the widgets


def save_form(job: TrainingJob) -> None:
    """After a run: save the model under a name of the student's, and say where to find it (or why not)."""
    st.subheader("Save this model")
    with st.form("save_model"):
        name = st.text_input("Name", value=f"{job.settings.task}-{job.id[:6]}", max_chars=48, key="tr_save_name")
        replace = st.checkbox("Replace a model of mine with the same name", key="tr_replace")
        save = st.form_submit_button("Save")
    if not save:
        return
    name = name.strip()
    try:
        job.save(name, overwrite=replace)
    except NotYoursError:
        st.error(f"`{user_entry_name(name)}` was saved by someone else (another browser session): it is never "
                 "replaced from here. Choose another name.")
    except NameTakenError:
        st.warning(f"You already have a model called `{name}`. Tick *Replace* to overwrite it, or choose another name.")
    except CheckpointError as error:
        st.error(str(error))
    else:
        st.success(f"Saved as `{user_entry_name(name)}`: pick it in the sidebar's checkpoint list on any page. Only "
                   "this browser session can replace or delete it (Your models page).")
        st.button("Open it now", on_click=select_checkpoint, args=(user_entry_name(name),))
