"""The Train page's job, queue, heartbeat, limits and saving, without Streamlit."""

from __future__ import annotations

import threading
import time

import pytest

from app_lib.training_job import (
    JobQueue,
    NameTakenError,
    QueueError,
    TrainingJob,
    TrainSettings,
    start_job,
)
from model import CheckpointError, ConfigError, load_checkpoint

TINY = TrainSettings(n=3, vocab=4, d_model=16, n_heads=2, n_kv_heads=1, n_layers=1, steps=12, batch_size=16)


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("training-")]


@pytest.fixture(autouse=True)
def _no_leftover_threads():
    yield
    for thread in training_threads():
        thread.join(30)
    assert not training_threads(), "a training thread outlived its test"


# ---------------------------------------------------------------- settings and limits


def test_default_settings_are_accepted():
    assert TrainSettings().problems() == []


@pytest.mark.parametrize("change, message", [
    ({"d_model": 512}, "d_model"), ({"n_layers": 8}, "n_layers"), ({"steps": 5000}, "steps"),
    ({"batch_size": 1024}, "batch_size"), ({"n": 40}, "n must"), ({"vocab": 100}, "vocab"),
    ({"lr": 2.0}, "lr"), ({"d_model": 30}, "divisible"), ({"n_kv_heads": 3}, "divide"),
    ({"pos_encoding": "rotary"}, "positional"),
])
def test_absurd_settings_are_refused_before_anything_starts(change, message):
    settings = TrainSettings(**change)
    assert any(message in p for p in settings.problems())
    queue = JobQueue(max_runs_override=1)
    with pytest.raises(ConfigError, match=message):
        start_job(settings, "me", queue)
    assert queue.counts() == (0, 0) and not training_threads()


# ---------------------------------------------------------------- a run, stop, save


def test_a_short_run_finishes_and_returns_its_thread(tmp_path):
    queue = JobQueue(max_runs_override=2)
    job = start_job(TINY, "me", queue, attention_every=4)
    assert job.wait(60) and job.status == "done"
    snap = job.snapshot()
    assert snap.finished and snap.latest.kind == "done" and snap.latest.step == 12
    assert [e.step for e in snap.events if e.kind == "step"] == list(range(1, 13))
    assert {"first_half_accuracy", "second_half_accuracy", "accuracy_by_position"} <= set(snap.latest.metrics)
    assert snap.attention.step == 12 and snap.attention.weights.shape == (1, 2, 5, 5)
    assert snap.seconds_left == 0 and queue.counts() == (0, 0) and not training_threads()
    assert len(job.reverse("1 2 3").split()) == 3


def test_stop_keeps_what_was_learned_and_can_be_saved(tmp_path):
    job = start_job(TrainSettings(**{**TINY.__dict__, "steps": 3000}), "me", JobQueue(max_runs_override=1))
    wait_until(lambda: len(job.snapshot().events) >= 3)
    job.stop()
    assert job.wait(60) and job.status == "stopped"
    snap = job.snapshot()
    assert snap.stop_reason == "stopped by you" and snap.latest.kind == "stopped" and snap.latest.step < 3000
    path = job.save("my-run", directory=tmp_path)
    loaded = load_checkpoint(path)
    assert loaded.meta["task"] == {"name": "reversal", "n": 3, "vocab": 4} and loaded.meta["steps"] == snap.latest.step
    assert loaded.config.n_kv_heads == 1 and job.snapshot().saved_as == "my-run"


def test_save_never_overwrites_without_asking(tmp_path):
    job = TrainingJob(TINY, "me")
    with pytest.raises(CheckpointError, match="no trained model"):
        job.save("early", directory=tmp_path)
    JobQueue().submit(job)
    job.wait(60)
    first = job.save("mine", directory=tmp_path)
    stamp = (first / "config.json").stat().st_mtime_ns
    with pytest.raises(NameTakenError):
        job.save("mine", directory=tmp_path)
    assert (first / "config.json").stat().st_mtime_ns == stamp
    job.save("mine", overwrite=True, directory=tmp_path)
    for bad in ("", "../escape", "a/b", ".hidden", "x" * 60, "spaces here"):
        with pytest.raises(CheckpointError, match="name"):
            job.save(bad, directory=tmp_path)


def test_a_failing_run_reports_its_error(monkeypatch):
    from app_lib import training_job

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(training_job, "build_model", broken)
    queue = JobQueue(max_runs_override=1)
    job = start_job(TINY, "me", queue)
    assert job.wait(30) and job.status == "failed" and "boom" in job.snapshot().error
    assert queue.counts() == (0, 0)


# ---------------------------------------------------------------- queue and heartbeat


def test_queue_limits_runs_and_sessions():
    queue = JobQueue(max_runs_override=1)
    long = TrainSettings(**{**TINY.__dict__, "steps": 3000})
    first = start_job(long, "a", queue)
    second, third = start_job(TINY, "b", queue), start_job(TINY, "c", queue)
    assert (first.status, second.status, third.status) == ("running", "queued", "queued")
    assert (second.snapshot().queue_position, third.snapshot().queue_position) == (1, 2)
    assert second.snapshot().running_runs == 1 and second.snapshot().waiting_runs == 2
    with pytest.raises(QueueError, match="already has"):
        start_job(TINY, "a", queue)
    second.stop()  # leaving the queue
    assert second.status == "stopped" and third.snapshot().queue_position == 1 and not second.has_model
    first.stop()
    assert first.wait(60)
    assert third.wait(60) and third.status == "done" and queue.counts() == (0, 0)


def test_max_runs_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TP_MAX_TRAINING_RUNS", "3")
    assert JobQueue().max_runs == 3
    monkeypatch.setenv("TP_MAX_TRAINING_RUNS", "nonsense")
    assert JobQueue().max_runs == 2
    monkeypatch.delenv("TP_MAX_TRAINING_RUNS")
    assert JobQueue().max_runs == 2


def test_a_run_without_heartbeat_stops_itself():
    job = start_job(TrainSettings(**{**TINY.__dict__, "steps": 3000}), "gone", JobQueue(), heartbeat_timeout=0.5)
    assert job.wait(60) and job.status == "stopped"
    assert "no open Train page" in job.snapshot().stop_reason and job.snapshot().latest.step < 3000


def test_a_waiting_run_without_heartbeat_leaves_the_queue():
    queue = JobQueue(max_runs_override=1)
    first = start_job(TrainSettings(**{**TINY.__dict__, "steps": 3000}), "a", queue)
    waiting = start_job(TINY, "b", queue, heartbeat_timeout=0.2)
    time.sleep(0.4)
    first.heartbeat()
    assert queue.counts() == (1, 1) and waiting.snapshot().queue_position is None  # snapshot prunes
    assert waiting.status == "stopped" and queue.counts() == (1, 0)
    first.stop()
    assert first.wait(60)


def test_job_objects_are_not_reused():
    queue = JobQueue()
    job = TrainingJob(TINY, "me")
    queue.submit(job)
    job.wait(60)
    with pytest.raises(QueueError, match="already started"):
        queue.submit(job)


@pytest.mark.slow
def test_default_settings_learn_the_reversal():
    """The Train page's defaults: >= 99% on the reversed half (CI on a quiet CPU: ~10-20 s)."""
    job = start_job(TrainSettings(), "me", JobQueue())
    begin = time.monotonic()
    while not job.finished:
        job.heartbeat()
        time.sleep(0.2)
    final = job.snapshot().latest
    assert final.kind == "done" and final.metrics["second_half_accuracy"] >= 0.99
    assert abs(final.metrics["first_half_accuracy"] - final.metrics["chance"]) < 0.05
    assert time.monotonic() - begin < 300  # generous: shared CI machines are slow; a quiet CPU needs ~15 s


def thread_nice(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])  # field 19 of proc(5): nice


def test_training_threads_run_nicer_than_page_threads(monkeypatch):
    """Page runs go first (TP_TRAINING_NICE, default 10); the page's own thread keeps its priority."""
    monkeypatch.setenv("TP_TRAINING_NICE", "7")
    job = start_job(TrainSettings(**{**TINY.__dict__, "steps": 3000}), "me", JobQueue(max_runs_override=1))
    wait_until(lambda: len(job.snapshot().events) >= 2)
    own = thread_nice(threading.get_native_id())
    assert thread_nice(job._thread.native_id) == min(19, own + 7)
    job.stop()
    assert job.wait(60)
