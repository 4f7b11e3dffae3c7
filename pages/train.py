"""Train: a reversal model trained in the background while live charts show loss, accuracy and attention forming."""

import streamlit as st

from app_lib.sidebar import select_checkpoint
from app_lib.state import ensure_entrypoint, session_token
from app_lib.training_job import JOB_QUEUE, QueueError, start_job
from app_lib.ui import chart, intro
from app_lib.user_models import NameTakenError, NotYoursError, user_entry_name
from explain.labels import token_labels
from explain.training import POSITIONAL, JobSnapshot, TrainSettings
from model import CheckpointError, ConfigError
from viz.figures_training import (
    plot_accuracy_by_position,
    plot_half_accuracy,
    plot_loss,
    plot_throughput,
    plot_training_attention,
)

ensure_entrypoint()  # a first request straight to /train must still go through app.py (sidebar)

JOB_KEY = "_tp_training_job"
owner = session_token()  # one run per session in the queue; its tag marks the models this session saves
job = st.session_state.get(JOB_KEY)
intro(
    "Train a model: reversal",
    "A small GPT learns to write n random symbols backwards. The first half of each sequence is random, so no "
    "model can beat chance there; the second half is fully determined, and a working model gets it right. "
    "Watch the loss fall and the attention heads learn to look at the mirrored position.",
    r"\mathcal{L} = -\frac{1}{2n-1}\sum_{t=0}^{2n-2} \log p_\theta(x_{t+1} \mid x_{\le t}), \qquad "
    r"x = a_1 \dots a_n\, a_n \dots a_1",
)

defaults = TrainSettings()
with st.form("train_settings"):
    st.markdown("**Settings** (the defaults reach 100% on the reversed half in under a minute)")
    c = st.columns(6)
    values = {
        "n": c[0].number_input("n (symbols to reverse)", value=defaults.n, step=1, key="tr_n"),
        "vocab": c[1].number_input("vocabulary size", value=defaults.vocab, step=1, key="tr_vocab"),
        "d_model": c[2].number_input("d_model", value=defaults.d_model, step=8, key="tr_d_model"),
        "n_heads": c[3].number_input("heads H", value=defaults.n_heads, step=1, key="tr_n_heads"),
        "n_kv_heads": c[4].number_input("K/V heads H_kv", value=defaults.n_kv_heads, step=1, key="tr_n_kv_heads"),
        "n_layers": c[5].number_input("layers", value=defaults.n_layers, step=1, key="tr_n_layers"),
        "lr": c[0].number_input("learning rate", value=defaults.lr, step=1e-3, format="%.4f", key="tr_lr"),
        "batch_size": c[1].number_input("batch size", value=defaults.batch_size, step=8, key="tr_batch"),
        "steps": c[2].number_input("steps", value=defaults.steps, step=50, key="tr_steps"),
        "seed": c[3].number_input("seed", value=defaults.seed, step=1, key="tr_seed"),
        "pos_encoding": c[4].selectbox("positional encoding", POSITIONAL, key="tr_pos"),
    }
    values["causal"] = not st.toggle("Remove the causal mask", key="tr_no_mask",
                                     help="Lets every position see the next token, i.e. its own answer.")
    st.caption("Limits on this shared server: " + TrainSettings.limits_text())
    started = st.form_submit_button("Start training", type="primary")

if started:
    settings = TrainSettings(**values)
    problems = settings.problems()
    if problems:
        st.error("Not started: " + " ".join(problems))
    elif job is not None and not job.finished:
        st.error("This session already has a run: stop it first.")
    else:
        try:
            job = start_job(settings, owner)
            st.session_state[JOB_KEY] = job
        except (ConfigError, QueueError) as error:
            st.error(f"Not started: {error}")
if not values["causal"]:
    st.warning("Without the causal mask each position can attend to the next token, which is exactly what it must "
               "predict. Watch the first-half accuracy rise far above chance: the model copies the answer it can "
               "see. At generation time that next token does not exist yet, so the model is useless for generating.")

if job is None:
    st.info("Choose settings and press **Start training**.")
    st.stop()
job.heartbeat()
active = not job.finished
if active:
    st.caption("Keep this page open while it trains: a run whose page has been closed for a minute stops by itself "
               "(and keeps what it learned).")


def show_status(snap: JobSnapshot) -> None:
    e = snap.latest
    if snap.status == "queued":
        st.info(f"Waiting: {snap.running_runs} of {snap.max_runs} training runs are busy on this server. "
                f"You are number {snap.queue_position} in the queue.")
    elif snap.status == "running" and e is not None:
        left = snap.seconds_left
        st.progress(snap.fraction_done, f"step {e.step} of {e.total_steps} · loss {e.loss:.3f} · "
                    f"{e.elapsed:.0f} s so far" + (f", about {left:.0f} s left" if left is not None else ""))
    elif snap.status == "running":
        st.info("Starting...")
    elif snap.status == "failed":
        st.error(f"The run failed: {snap.error}")
    else:
        why = f" ({snap.stop_reason})" if snap.status == "stopped" and snap.stop_reason else ""
        st.success(f"{snap.status.capitalize()}{why} after {snap.steps_done} steps, {snap.seconds_so_far:.0f} s.")


@st.fragment(run_every=1.0 if active else None)
def live() -> None:
    job.heartbeat()
    snap = JOB_QUEUE.snapshot(job)
    if active and snap.finished:
        st.rerun()  # redraw the whole page: timer off, save controls on
    show_status(snap)
    if not snap.finished:
        st.button("Stop", on_click=job.stop, key="tr_stop", help="Ends the run after the current step; "
                  "the model keeps what it learned.")
    steps, evals = snap.step_events, snap.evaluations
    left, right = st.columns(2)
    with left:
        chart(plot_loss(steps), "train_loss")
        chart(plot_throughput(steps), "train_speed")
    with right:
        if evals:
            chart(plot_half_accuracy(evals, snap.chance), "train_half_accuracy")
            chart(plot_accuracy_by_position(snap.accuracy_by_position, snap.settings.n, snap.chance,
                                            evals[-1].step), "train_accuracy_by_position")
        else:
            st.info(f"Accuracy on fresh sequences appears after the first evaluation (every {snap.eval_every} steps).")
    if snap.attention is not None:
        labels = token_labels(snap.attention.tokens)
        chart(plot_training_attention(snap.attention.weights, labels, snap.attention.step, snap.settings.causal),
              "train_attention")


live()

if job.finished and job.has_model:
    example = job.snapshot().example_question
    st.markdown(f"The trained model reverses `{example}` as `{job.reverse(example)}`.")
    st.subheader("Save this model")
    with st.form("save_model"):
        name = st.text_input("Name", value=f"reversal-{job.id[:6]}", max_chars=48, key="tr_save_name")
        replace = st.checkbox("Replace a model of mine with the same name", key="tr_replace")
        save = st.form_submit_button("Save")
    if save:
        try:
            job.save(name.strip(), overwrite=replace)
            st.success(f"Saved as `{user_entry_name(name.strip())}`: pick it in the sidebar's checkpoint list on "
                       f"any page. Only this browser session can replace or delete it (Your models page).")
            st.button("Open it now", on_click=select_checkpoint, args=(user_entry_name(name.strip()),))
        except NotYoursError:
            st.error(f"`{user_entry_name(name.strip())}` was saved by someone else (another browser session): it is "
                     "never replaced from here. Choose another name.")
        except NameTakenError:
            st.warning(f"You already have a model called `{name.strip()}`. Tick *Replace* to overwrite it, "
                       "or choose another name.")
        except CheckpointError as error:
            st.error(str(error))
