"""KV-cache arithmetic and presets; the Train page's job, queue, heartbeat, limits and saving, without Streamlit."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from conftest import tiny_gpt

from app_lib.training_job import (
    JobQueue,
    NameTakenError,
    QueueError,
    TrainingJob,
    TrainSettings,
    start_job,
)
from model import CheckpointError, ConfigError, load_checkpoint
from model.kv_math import (
    PRESETS,
    attention_kind,
    attention_parameters,
    bytes_per_token,
    cache_bytes,
    format_bytes,
    preset_table,
)

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


# ---------------------------------------------------------------- cache arithmetic


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_cache_bytes_equal_the_model_cache(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.randint(0, 13, (3, 7)), cache=cache)
        model(torch.randint(0, 13, (3, 1)), cache=cache)
    assert cache.nbytes == cache_bytes(2, n_kv_heads, 8, tokens=8, batch=3, bytes_per_element=4)
    assert attention_kind(4, n_kv_heads) == {4: "MHA", 2: "GQA", 1: "MQA"}[n_kv_heads]


def test_cache_formula_scales_with_kv_heads():
    mha, gqa, mqa = (cache_bytes(32, kv, 128, 4096, 1, 2) for kv in (32, 8, 1))
    assert mha == 2 * 1024**3 and mha == 4 * gqa == 32 * mqa
    assert bytes_per_token(32, 32, 128, 2) == 512 * 1024
    with pytest.raises(ValueError):
        cache_bytes(0, 1, 1, 1)
    with pytest.raises(ValueError):
        cache_bytes(1, 1, 1, -1)


def test_attention_parameters_count_the_module():
    for kv in (4, 2, 1):
        attn = tiny_gpt(kv).decoder.layers[0].self_attn
        assert attention_parameters(32, 4, kv) == sum(p.numel() for p in attn.parameters())


@pytest.mark.parametrize("name, kind, kib_per_token", [
    ("GPT-2 small (124M)", "MHA", 36), ("GPT-2 XL (1.5B)", "MHA", 300), ("Llama-2-7B (MHA)", "MHA", 512),
    ("Llama-2-70B (GQA)", "GQA", 320), ("Mistral-7B (GQA)", "GQA", 128), ("Falcon-7B (MQA)", "MQA", 8),
])
def test_presets(name, kind, kib_per_token):
    shape = PRESETS[name]
    assert shape.kind == kind and shape.n_heads % shape.n_kv_heads == 0 and shape.source
    assert bytes_per_token(shape.n_layers, shape.n_kv_heads, shape.d_head, 2) == kib_per_token * 1024
    variants = shape.variants()
    assert variants["MHA"] == shape.n_heads and variants["MQA"] == 1 and shape.n_heads % variants["GQA"] == 0


def test_preset_table_and_formatting():
    rows = preset_table()
    assert [r["model"] for r in rows] == list(PRESETS)
    assert rows[2]["GiB at full context (fp16, batch 1)"] == 2.0  # Llama-2-7B at 4096 tokens
    assert (format_bytes(512), format_bytes(1536), format_bytes(2 * 1024**3)) == ("512 B", "1.5 KiB", "2.0 GiB")


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
