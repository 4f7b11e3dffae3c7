"""The Train page's job, queue, runners, heartbeat, limits and saving, without Streamlit.

Runs train in threads unless a test is about the worker process (each start costs a few seconds
of importing torch). Heartbeats run on a fake clock; nothing waits for a fixed time.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest
import torch

from app_lib import training_run, training_worker
from app_lib.training_job import (
    JobQueue,
    NameTakenError,
    QueueError,
    TrainingJob,
    TrainSettings,
    start_job,
)
from app_lib.training_queue import WAITING_PAGE_GONE, usable_cores
from app_lib.training_run import WorkerDone, WorkerFailed, model_from_bytes, new_model, weights_to_bytes
from explain.training import FINISHED, JobSnapshot, reversal_loss_floor
from model import CheckpointError, ConfigError, load_checkpoint

TINY = TrainSettings(n=3, vocab=4, d_model=16, n_heads=2, n_kv_heads=1, n_layers=1, steps=12, batch_size=16,
                     stop_when_learned=False)
LONG = TrainSettings(**{**TINY.__dict__, "steps": 3000})


class FakeClock:
    """The jobs' clock for heartbeats: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def thread_job(settings: TrainSettings, owner: str = "me", **options) -> TrainingJob:
    return TrainingJob(settings, owner, runner="thread", **options)


def submitted(queue: JobQueue, *jobs: TrainingJob) -> list[TrainingJob]:
    for job in jobs:
        queue.submit(job)
    return list(jobs)


def wait_for_steps(job: TrainingJob, steps: int, timeout: float = 120.0) -> None:
    """Block until the run has reported `steps` steps (polling its snapshot, with a deadline)."""
    deadline = time.monotonic() + timeout
    while job.snapshot().steps_done < steps and not job.finished:
        assert time.monotonic() < deadline, "the run reported no steps in time"
        time.sleep(0.02)


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("training-")]


@pytest.fixture(autouse=True)
def _no_leftover_threads():
    yield
    for thread in training_threads():
        thread.join(60)
    assert not training_threads(), "a training thread outlived its test"


# ---------------------------------------------------------------- settings and limits


def test_default_settings_are_accepted():
    assert TrainSettings().problems() == []
    assert TrainSettings.from_dict(TrainSettings().to_dict()) == TrainSettings()
    dates = TrainSettings.defaults("dates")
    assert dates.problems() == [] and dates.task_description() == {"name": "dates"}
    assert dates.train_config().stop_metric == "exact_match" and dates.loss_floor is None
    config = TrainSettings().train_config()
    assert (config.stop_metric, config.stop_at, config.eval_every) == ("second_half_accuracy", 0.99, 2)
    assert TrainSettings(stop_when_learned=False).train_config().stop_metric == ""


@pytest.mark.parametrize("change", [{"pos_encoding": "rope"}, {"attention": "mla", "kv_latent_dim": 16},
                                    {"attention": "mla", "pos_encoding": "rope"}])
def test_rope_and_mla_are_offered(change):
    settings = TrainSettings(**change)
    assert settings.problems() == []
    model = new_model(settings)
    assert model.config.pos_encoding == settings.pos_encoding and model.config.attention == settings.attention
    if settings.attention == "mla":
        assert model.config.kv_latent_dim == settings.kv_latent_dim


def test_the_reversal_loss_floor_is_the_random_half_at_chance():
    floor = reversal_loss_floor(8, 10)
    assert floor.value == pytest.approx(7 / 15 * math.log(10)) and round(floor.value, 2) == 1.07
    assert "(n−1)/(2n−1) · ln V = 7/15 · ln 10 ≈ 1.07" in floor.formula
    # the cross-entropy of a perfect model: uniform over V on the n - 1 random predictions, certain on the n others
    n, vocab = 4, 6
    logits = torch.zeros(2 * n - 1, vocab)
    logits[n - 1 :, 0] = 1e4
    targets = torch.zeros(2 * n - 1, dtype=torch.long)
    assert torch.nn.functional.cross_entropy(logits, targets).item() == pytest.approx(reversal_loss_floor(n, vocab).value)
    assert TrainSettings().loss_floor == floor and TrainSettings(causal=False).loss_floor is None

@pytest.mark.parametrize("change, message", [
    ({"d_model": 512}, "d_model"), ({"n_layers": 8}, "n_layers"), ({"steps": 5000}, "steps"),
    ({"batch_size": 1024}, "batch_size"), ({"n": 40}, "n must"), ({"vocab": 100}, "vocab"),
    ({"lr": 2.0}, "lr"), ({"d_model": 30}, "divisible"), ({"n_kv_heads": 3}, "divide"),
    ({"pos_encoding": "rotary"}, "positional"), ({"task": "sums"}, "task must"),
    ({"task": "dates", "attention": "mla"}, "MLA is offered"),
    ({"kv_latent_dim": 0}, "kv_latent_dim"),
])
def test_absurd_settings_are_refused_before_anything_starts(change, message):
    settings = TrainSettings(**change)
    assert any(message in p for p in settings.problems())
    queue = JobQueue(max_runs_override=1)
    with pytest.raises(ConfigError, match=message):
        start_job(settings, "me", queue)
    assert queue.counts() == (0, 0) and not training_threads()


# ---------------------------------------------------------------- a run, stop, save


@pytest.mark.parametrize("runner", ["thread", "process"])
def test_a_short_run_finishes_and_frees_its_slot(runner):
    queue = JobQueue(max_runs_override=2)
    job = start_job(TINY, "me", queue, attention_every=4, runner=runner)
    assert job.wait(120) and job.status == "done"
    snap = queue.snapshot(job)
    assert snap.finished and snap.latest.kind == "done" and snap.latest.step == 12 and snap.error is None
    assert [e.step for e in snap.step_events] == list(range(1, 13))
    assert {"first_half_accuracy", "second_half_accuracy", "accuracy_by_position"} <= set(snap.latest.metrics)
    assert snap.attention.step == 12 and snap.attention.weights.shape == (1, 2, 5, 5)  # (L, H, T, T)
    assert len(snap.attention.tokens) == 5 and snap.example_question == " ".join(snap.attention.tokens[:3])
    assert snap.seconds_left == 0 and snap.fraction_done == 1 and snap.chance == 0.25
    assert len(snap.accuracy_by_position) == 5 and snap.eval_every == 2 and snap.learned is None
    assert queue.counts() == (0, 0) and not training_threads()
    assert len(job.answer("1 2 3").split()) == 3


def test_weights_cross_the_process_boundary_exactly():
    model = new_model(TINY)
    for p in model.parameters():
        p.data.normal_()
    copy = model_from_bytes(TINY, weights_to_bytes(model))
    for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("runner", ["thread", "process"])
def test_stop_keeps_what_was_learned_and_saves_a_round_trip(tmp_path, runner):
    job = start_job(LONG, "me", JobQueue(max_runs_override=1), runner=runner)
    wait_for_steps(job, 3)
    job.stop()
    assert job.wait(120) and job.status == "stopped"
    snap = job.snapshot()
    assert snap.stop_reason == "stopped by you" and snap.latest.kind == "stopped" and 3 <= snap.latest.step < 3000
    path = job.save("my-run", directory=tmp_path)
    loaded = load_checkpoint(path)
    assert loaded.meta["task"] == {"name": "reversal", "n": 3, "vocab": 4} and loaded.meta["steps"] == snap.latest.step
    assert loaded.config.n_kv_heads == 1 and job.snapshot().saved_as == "my-run"
    for text in ("1 2 3", "3 3 0", "0 1 2"):
        assert job.task.run(loaded.model, loaded.tokenizer, text) == job.answer(text)


def test_save_never_overwrites_without_asking(tmp_path):
    job = thread_job(TINY)
    with pytest.raises(CheckpointError, match="no trained model"):
        job.save("early", directory=tmp_path)
    JobQueue().submit(job)
    assert job.wait(120)
    first = job.save("mine", directory=tmp_path)
    stamp = (first / "config.json").stat().st_mtime_ns
    with pytest.raises(NameTakenError):
        job.save("mine", directory=tmp_path)
    assert (first / "config.json").stat().st_mtime_ns == stamp
    job.save("mine", overwrite=True, directory=tmp_path)
    for bad in ("", "../escape", "a/b", ".hidden", "x" * 60, "spaces here"):
        with pytest.raises(CheckpointError, match="name"):
            job.save(bad, directory=tmp_path)


def broken(*args, **kwargs):
    raise RuntimeError("boom")


def test_a_failing_run_is_shown_as_failed_with_its_message(monkeypatch):
    monkeypatch.setattr(training_run, "build_model", broken)
    queue = JobQueue(max_runs_override=1)
    job = start_job(TINY, "me", queue, runner="thread")
    assert job.wait(60) and job.status == "failed" and job.snapshot().error == "RuntimeError: boom"
    assert queue.counts() == (0, 0) and not job.has_model


def test_a_failing_worker_sends_its_message_instead_of_raising(monkeypatch):
    monkeypatch.setattr(training_run, "build_model", broken)
    sent = []
    training_worker.run(TINY, 10, threading.Event(), sent.append)
    assert sent == [WorkerFailed("RuntimeError: boom")]


def test_a_worker_ends_with_its_weights():
    sent = []
    training_worker.run(TINY, 4, threading.Event(), sent.append)
    done, attention, weights = sent[-3:]  # the last event, the attention at the end, then the weights
    assert done.kind == "done" and attention.step == 12 and isinstance(weights, WorkerDone)
    assert model_from_bytes(TINY, weights.weights) is not None


def test_a_worker_that_dies_fails_the_run_with_a_message():
    queue = JobQueue(max_runs_override=1)
    job = start_job(LONG, "me", queue, runner="process")
    wait_for_steps(job, 1)
    os.kill(job.worker_pid, signal.SIGKILL)
    assert job.wait(60) and job.status == "failed"
    assert job.snapshot().error == "the training process ended unexpectedly (killed by signal 9)."
    assert queue.counts() == (0, 0) and not job.has_model


def test_the_worker_stops_when_told_or_when_its_input_ends():
    for lines in (["stop\n", "ignored\n"], []):
        stop = threading.Event()
        training_worker.watch_for_stop(iter(lines), stop)
        assert stop.is_set()


# ---------------------------------------------------------------- queue and heartbeat


def test_the_queue_admits_at_most_max_runs_in_order():
    queue = JobQueue(max_runs_override=2)
    a, b, c, d = submitted(queue, *(thread_job(LONG, owner) for owner in "abcd"))
    assert [j.status for j in (a, b, c, d)] == ["running", "running", "queued", "queued"]
    assert queue.counts() == (2, 2)
    assert [queue.snapshot(j).queue_position for j in (a, b, c, d)] == [None, None, 1, 2]
    assert queue.snapshot(c).running_runs == 2 and queue.snapshot(c).waiting_runs == 2
    assert queue.snapshot(c).max_runs == 2
    b.stop()
    assert b.wait(120)  # its end started the first waiting run, c, before wait() returned
    assert (c.status, d.status, queue.snapshot(d).queue_position) == ("running", "queued", 1)
    for job in (a, c, d):
        job.stop()
    assert all(job.wait(120) for job in (a, b, c, d)) and queue.counts() == (0, 0)
    assert d.status == "stopped" and not d.has_model  # stopped while waiting: it never ran


def test_one_run_per_session_and_no_second_start():
    queue = JobQueue(max_runs_override=1)
    first = start_job(LONG, "a", queue, runner="thread")
    with pytest.raises(QueueError, match="already has"):
        start_job(TINY, "a", queue, runner="thread")
    first.stop()
    assert first.wait(120)
    with pytest.raises(QueueError, match="already started"):
        queue.submit(first)
    again = start_job(TINY, "a", queue, runner="thread")  # the session's run has ended: a new one may start
    assert again.wait(120) and again.status == "done"


def test_a_waiting_run_that_is_stopped_leaves_the_queue():
    queue = JobQueue(max_runs_override=1)
    first, second, third = submitted(queue, *(thread_job(s, o) for s, o in ((LONG, "a"), (TINY, "b"), (TINY, "c"))))
    second.stop()
    assert second.status == "stopped" and second.wait(0) and queue.snapshot(third).queue_position == 1
    assert queue.counts() == (1, 1)
    first.stop()
    assert first.wait(120) and third.wait(120) and third.status == "done" and queue.counts() == (0, 0)


def test_max_runs_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TP_MAX_TRAINING_RUNS", "3")
    assert JobQueue().max_runs == 3
    monkeypatch.setenv("TP_MAX_TRAINING_RUNS", "nonsense")
    assert JobQueue().max_runs == 2
    monkeypatch.delenv("TP_MAX_TRAINING_RUNS")
    assert JobQueue().max_runs == 2
    assert JobQueue(max_runs_override=2).threads_per_run == max(1, usable_cores() // 2)


@pytest.mark.parametrize("runner", ["thread", "process"])
def test_a_run_without_heartbeat_stops_itself(runner):
    clock = FakeClock()
    job = TrainingJob(LONG, "gone", heartbeat_timeout=60, runner=runner, clock=clock)
    JobQueue().submit(job)
    wait_for_steps(job, 2)
    job.heartbeat()
    clock.now = 61  # the page stopped polling a minute ago
    assert job.wait(120) and job.status == "stopped" and job.has_model
    snap = job.snapshot()
    assert snap.stop_reason == "no open Train page for 60 s (tab closed?)" and snap.latest.step < 3000


def test_a_waiting_run_without_heartbeat_leaves_the_queue():
    queue, clock = JobQueue(max_runs_override=1), FakeClock()
    first = start_job(LONG, "a", queue, runner="thread")
    waiting = start_job(TINY, "b", queue, runner="thread", heartbeat_timeout=60, clock=clock)
    assert queue.counts() == (1, 1)
    clock.now = 61
    assert queue.counts() == (1, 0) and queue.snapshot(waiting).queue_position is None  # asking prunes
    assert waiting.status == "stopped" and waiting.snapshot().stop_reason == WAITING_PAGE_GONE
    first.stop()
    assert first.wait(120)


def test_snapshots_are_typed_records():
    snap = thread_job(TINY).snapshot()
    assert isinstance(snap, JobSnapshot) and snap.status == "new" and "new" not in FINISHED
    assert (snap.latest, snap.seconds_left, snap.chance, snap.accuracy_by_position) == (None, None, None, [])
    assert snap.example_question is None and snap.steps_done == 0 and snap.fraction_done == 0


@pytest.mark.slow
def test_default_settings_learn_the_reversal():
    """The Train page's defaults, in a worker process: >= 99% on the reversed half (quiet CPU: ~10-20 s)."""
    job = start_job(TrainSettings(), "me", JobQueue())
    begin = time.monotonic()
    while not job.wait(0.5):
        job.heartbeat()
    snap = job.snapshot()
    final = snap.latest
    assert final.kind == "learned" and final.metrics["second_half_accuracy"] >= 0.99 and snap.status == "done"
    assert snap.learned_text == f"Learned in {final.step} steps, {final.elapsed:.1f} seconds."
    assert abs(final.metrics["first_half_accuracy"] - final.metrics["chance"]) < 0.05
    assert time.monotonic() - begin < 300  # generous: shared CI machines are slow


def test_a_run_that_learns_stops_itself_and_says_so():
    settings = TrainSettings(n=3, vocab=4, d_model=32, n_heads=2, n_kv_heads=2, n_layers=1, steps=400, batch_size=32)
    job = start_job(settings, "me", JobQueue(max_runs_override=1), runner="thread")
    assert job.wait(120) and job.status == "done"
    snap = job.snapshot()
    assert snap.learned is not None and snap.latest.step < 400
    assert snap.latest.metrics["second_half_accuracy"] >= 0.99
    assert snap.learned_text == f"Learned in {snap.latest.step} steps, {snap.latest.elapsed:.1f} seconds."
    assert snap.outcome_text.startswith("The model has learned to write 3 random symbols backwards")
    assert "(chance 25%)" in snap.accuracy_text and snap.accuracy_text.startswith("second half ")
    assert [c.learned_metric for c in snap.accuracy_curves] == [False, True] and snap.target == 0.99


def test_a_dates_run_traces_cross_attention_and_answers_in_iso_form():
    settings = TrainSettings(task="dates", d_model=16, n_heads=2, n_kv_heads=2, n_layers=1, steps=10,
                             batch_size=8, pos_encoding="sinusoidal")
    job = start_job(settings, "me", JobQueue(max_runs_override=1), runner="thread")
    assert job.wait(120) and job.status == "done"
    snap = job.snapshot()
    a = snap.attention
    assert a.kind == "cross" and a.weights.shape == (1, 2, len(a.query_tokens), len(a.tokens))  # (L, H, Tq, S)
    assert a.query_tokens[0] == "<s>" and snap.example_question == "".join(a.tokens)
    assert torch.allclose(a.weights.sum(-1), torch.ones(1, 2, len(a.query_tokens)), atol=1e-5)
    assert snap.accuracy_text.startswith("exact match ") and snap.chance is None and snap.accuracy_by_position == []
    assert isinstance(job.answer("march 3, 1997"), str) and job.generation_check() is None


def test_without_the_causal_mask_generation_is_measured_beside_teacher_forcing():
    settings = TrainSettings(n=4, vocab=5, d_model=32, n_heads=2, n_kv_heads=2, n_layers=2, steps=150, causal=False)
    job = start_job(settings, "me", JobQueue(max_runs_override=1), runner="thread")
    assert job.wait(120)
    check = job.generation_check()
    assert check is not None and check.sequences == 200 and len(check.continuation.split()) == 7
    assert check.first_half_teacher_forced > 0.9  # it copies the visible next token
    assert "Generating, as a user would" in check.text and check.start in {"0", "1", "2", "3", "4"}
