"""Train: a reversal GPT or a dates encoder-decoder trained in the background, with live charts and numbers."""

import streamlit as st

from app_lib.state import ensure_entrypoint, session_token
from app_lib.training_form import pick_task, save_form, settings_form
from app_lib.training_job import JOB_QUEUE, QueueError, start_job
from app_lib.ui import chart
from explain.labels import reversal_axis, token_labels
from explain.training import JobSnapshot
from model import ConfigError
from viz.figures_training import (
    plot_accuracy_by_position,
    plot_accuracy_curves,
    plot_loss,
    plot_throughput,
    plot_training_attention,
)

ensure_entrypoint()  # a first request straight to /train must still go through app.py (sidebar)

JOB_KEY = "_tp_training_job"
owner = session_token()  # one run per session in the queue; its tag marks the models this session saves
job = st.session_state.get(JOB_KEY)
title = st.empty()  # above the task picker; its text depends on the task
task = pick_task()
title.title(f"Train a model: {task}")
if task == "dates":
    intro_text = ("A small encoder-decoder learns to rewrite a date written in one of seven human formats "
                  "(\"tuesday, february 20, 2004\", \"20.02.2004\") as 2004-02-20, character by character. Watch the "
                  "exact matches rise and the cross-attention form an alignment: each output character learns where "
                  "in the source its digits are written.")
    formula = r"\mathcal{L} = -\frac{1}{|y|}\sum_{t} \log p_\theta(y_{t} \mid y_{<t}, x)"
else:
    intro_text = ("A small GPT learns to write n random symbols backwards. The first half of each sequence is random, "
                  "so no model can beat chance there; the second half is fully determined, and a working model gets it "
                  "right. Watch the loss fall to its floor and the attention heads learn to look at the mirrored "
                  "position.")
    formula = (r"\mathcal{L} = -\frac{1}{2n-1}\sum_{t=0}^{2n-2} \log p_\theta(x_{t+1} \mid x_{\le t}), \qquad "
               r"x = a_1 \dots a_n\, a_n \dots a_1")
st.markdown(intro_text)
st.latex(formula)

settings, started = settings_form(task)
if started:
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
if task == "reversal" and not settings.causal:
    st.warning("Without the causal mask each position can attend to the next token, which is exactly what it must "
               "predict. Watch the first-half accuracy rise far above chance: the model copies the answer it can "
               "see. When it generates, that next token does not exist yet: what it then does is measured below "
               "once the run ends.")

if job is None:
    st.info("Choose settings and press **Start training**.")
    st.stop()
job.heartbeat()
active = not job.finished
if active:
    st.caption("Keep this page open while it trains: a run whose page has been closed for a minute stops by itself "
               "(and keeps what it learned).")


def show_status(snap: JobSnapshot) -> None:
    if snap.status == "queued":
        st.info(f"Waiting: {snap.running_runs} of {snap.max_runs} training runs are busy on this server. "
                f"You are number {snap.queue_position} in the queue.")
    elif snap.status == "running" and snap.latest is not None:
        st.progress(snap.fraction_done, snap.progress_line)
    elif snap.status == "running":
        st.info("Starting...")
    elif snap.status == "failed":
        st.error(f"The run failed: {snap.error}")
    elif snap.learned_text:
        st.success(snap.learned_text)
    else:
        why = f" ({snap.stop_reason})" if snap.status == "stopped" and snap.stop_reason else ""
        st.success(f"{snap.status.capitalize()}{why} after {snap.steps_done} steps, {snap.seconds_so_far:.0f} s.")
    if snap.accuracy_text:
        st.markdown(f"**{snap.progress_text}** · {snap.accuracy_text}")
    if snap.outcome_text:
        st.markdown(snap.outcome_text)


def show_attention(snap: JobSnapshot) -> None:
    a = snap.attention
    if a.kind == "cross":
        chart(plot_training_attention(a.weights, token_labels(a.row_tokens), a.step, False,
                                      key_labels=a.tokens, what="Cross-attention"), "train_attention")
        st.caption(f"Rows: what the decoder has read of the answer (`<s>` then the ISO date, teacher-forced); "
                   f"columns: the characters of `{a.question}`, once per head. An alignment forms as the model "
                   "learns: each output digit looks at where it is written in the source.")
    else:
        chart(plot_training_attention(a.weights, token_labels(a.tokens), a.step, snap.settings.causal),
              "train_attention")


@st.fragment(run_every=0.75 if active else None)  # charts at least once a second, with the page's own time
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
        chart(plot_loss(steps, snap.settings.loss_floor), "train_loss")
        chart(plot_throughput(steps), "train_speed")
    with right:
        if evals:
            chart(plot_accuracy_curves(snap.accuracy_curves, snap.chance, snap.target), "train_half_accuracy")
            if snap.accuracy_by_position:
                chart(plot_accuracy_by_position(snap.accuracy_by_position, snap.settings.n, snap.chance,
                                                evals[-1].step), "train_accuracy_by_position")
                st.caption(reversal_axis(snap.settings.n, snap.chance).note)
        else:
            st.info(f"Accuracy on fresh examples appears after the first evaluation (every {snap.eval_every} steps).")
    if snap.attention is not None:
        show_attention(snap)


live()

if job.finished and job.has_model:
    example = job.snapshot().example_question
    verb = "rewrites" if job.settings.task == "dates" else "reverses"
    st.markdown(f"The trained model {verb} `{example}` as `{job.answer(example)}`.")
    check = job.generation_check()
    if check is not None:
        st.info(check.text)
    save_form(job)
