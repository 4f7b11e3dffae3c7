"""Training runs started from the Train page: a background job per session, and one queue per server.

No Streamlit here: the page keeps a `TrainingJob` in `st.session_state` and polls
`job.snapshot()` from a timed fragment; the job's thread only trains and records.

    TrainSettings   what the student chose; `problems()` lists what is refused, before anything starts
    TrainingJob     one run: a thread that runs model.training.train and appends its events to a
                    list under a lock; the attention of a fixed example is traced every few steps
                    between optimiser steps (eval mode, no_grad, on the training thread itself, so
                    the weights never change under it); stop(), snapshot(), save()
    JobQueue        (training_queue.py) at most $TP_MAX_TRAINING_RUNS (default 2) runs train at once;
                    the others wait in order, each with a visible position; one run per session

A run whose browser tab closed stops itself: the page's fragment calls `job.heartbeat()`
every second or so, and a job with no heartbeat for $TP_TRAINING_HEARTBEAT_S seconds
(default 60) stops between steps (a waiting one leaves the queue). When a run ends its
thread ends, its optimiser state is freed, and the queue starts the next waiting run.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from model import CheckpointError, ConfigError, GPTConfig, save_checkpoint, trace
from model.recipes import build_model
from model.tasks import task_from_dict
from model.training import TrainConfig, TrainEvent, check_run, train

from .ownership import USER_FOLDER_LOCK, check_may_replace, owner_tag, with_owner
from .training_queue import JOB_QUEUE, JobQueue, QueueError, env_number

HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S = "TP_TRAINING_HEARTBEAT_S", 60.0
EXAMPLE_SEED = 1234  # the fixed example whose attention the page shows forming
# The training thread gives up Python's lock (the GIL) inside many PyTorch calls and must wait up to
# the switch interval (5 ms by default) to get it back whenever the server's threads are busy drawing
# pages: with the default, a run in the app took 10-20x longer than alone. 1 ms keeps it within ~2x.
GIL_SWITCH_INTERVAL_S = 0.001
# Training threads run `nice`r than the threads that draw pages, so a page run gets a core first: a class
# notices a slow page at once and a slower training run hardly at all. Linux keeps the nice value per
# thread, and PyTorch's worker threads started by the training thread inherit it. 0: off.
TRAINING_NICE_ENV, DEFAULT_TRAINING_NICE = "TP_TRAINING_NICE", 10
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
Status = Literal["new", "queued", "running", "done", "stopped", "failed"]
FINISHED: tuple[Status, ...] = ("done", "stopped", "failed")

# (min, max) per setting: small enough that a run finishes in minutes on a shared 2-core server.
LIMITS: dict[str, tuple[float, float]] = {
    "n": (2, 16), "vocab": (2, 64), "d_model": (8, 256), "n_heads": (1, 16), "n_kv_heads": (1, 16),
    "n_layers": (1, 4), "lr": (1e-5, 0.1), "batch_size": (1, 256), "steps": (10, 3000), "seed": (0, 2**31 - 1),
}
POSITIONAL = ("learned", "sinusoidal", "none")


@dataclass(frozen=True)
class TrainSettings:
    """A reversal run as the Train page sets it up. The defaults reach 100% on the reversed half in ~200 steps."""

    n: int = 8
    vocab: int = 10
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 4
    n_layers: int = 2
    lr: float = 3e-3
    batch_size: int = 64
    steps: int = 200
    seed: int = 0
    pos_encoding: str = "learned"
    causal: bool = True

    def problems(self) -> list[str]:
        """Everything that makes this run refused (empty when it may start)."""
        found = [f"{name} must be between {low:g} and {high:g} here (got {getattr(self, name):g})."
                 for name, (low, high) in LIMITS.items() if not low <= getattr(self, name) <= high]
        if self.pos_encoding not in POSITIONAL:
            found.append(f"positional encoding must be one of {POSITIONAL}, got {self.pos_encoding!r}.")
        if found:
            return found
        try:
            config = GPTConfig(vocab_size=self.vocab, max_len=2 * self.n, **self.model_settings())
            check_run(config, self.train_config(), 2 * self.n)
        except ConfigError as error:
            return [str(error)]
        return []

    def task_description(self) -> dict:
        return {"name": "reversal", "n": self.n, "vocab": self.vocab}

    def model_settings(self) -> dict:
        return {"d_model": self.d_model, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
                "n_layers": self.n_layers, "pos_encoding": self.pos_encoding, "causal": self.causal}

    def train_config(self) -> TrainConfig:
        """Evaluations every ~10% of the run (every 10 to 100 steps) feed the accuracy charts."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           warmup_steps=min(20, self.steps // 10), eval_every=min(100, max(10, self.steps // 10)),
                           eval_sequences=500, device="cpu")


@dataclass(frozen=True)
class AttentionSnapshot:
    """The attention weights of the fixed example at one step: (L, H, T, T), T = 2n - 1 inputs."""

    step: int
    weights: torch.Tensor
    example_ids: tuple[int, ...]


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for one page run (the thread keeps going meanwhile)."""

    status: Status
    settings: TrainSettings
    events: tuple[TrainEvent, ...]
    attention: AttentionSnapshot | None
    error: str | None
    stop_reason: str | None
    queue_position: int | None  # 1 = next to start; None when not waiting
    running_runs: int
    waiting_runs: int
    max_runs: int
    saved_as: str | None = None

    @property
    def latest(self) -> TrainEvent | None:
        return self.events[-1] if self.events else None

    @property
    def evaluations(self) -> list[TrainEvent]:
        return [e for e in self.events if e.kind != "step"]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def seconds_left(self) -> float | None:
        """Time left at the run's average pace so far; None before the first step."""
        e = self.latest
        if e is None or e.step == 0:
            return None
        return e.elapsed / e.step * (e.total_steps - e.step)


class TrainingJob:
    """One training run on the reversal task, in a background thread once its queue admits it."""

    def __init__(self, settings: TrainSettings, owner: str, heartbeat_timeout: float | None = None,
                 attention_every: int = 10):
        problems = settings.problems()
        if problems:
            raise ConfigError(" ".join(problems))
        self.id = uuid.uuid4().hex
        self.settings, self.owner = settings, owner
        self.heartbeat_timeout = heartbeat_timeout or env_number(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S, 1.0)
        self.attention_every = attention_every
        self.task = task_from_dict(settings.task_description())
        self.tokenizer = self.task.make_tokenizer()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: list[TrainEvent] = []
        self._status: Status = "new"
        self._attention: AttentionSnapshot | None = None
        self._error = self._stop_reason = self._saved_as = None
        self._model = None
        self._thread: threading.Thread | None = None
        self._queue: JobQueue | None = None  # set by JobQueue.submit
        self._last_heartbeat = time.monotonic()

    # -------------------------------------------------------------- read by the page

    @property
    def status(self) -> Status:
        with self._lock:
            return self._status

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def has_model(self) -> bool:
        """True once a run has ended with a model to try and save."""
        with self._lock:
            return self._model is not None

    def heartbeat(self) -> None:
        """The page is still open (call on every fragment run)."""
        self._last_heartbeat = time.monotonic()

    def abandoned(self) -> bool:
        """True when the page has not called heartbeat() for heartbeat_timeout seconds."""
        return time.monotonic() - self._last_heartbeat > self.heartbeat_timeout

    def snapshot(self) -> JobSnapshot:
        queue = self._queue
        position, running, waiting, max_runs = queue.state_of(self) if queue is not None else (None, 0, 0, 0)
        with self._lock:
            return JobSnapshot(self._status, self.settings, tuple(self._events), self._attention, self._error,
                               self._stop_reason, position, running, waiting, max_runs, self._saved_as)

    def stop(self, reason: str = "stopped by you") -> None:
        """Stop between steps (the model keeps what it learned); a waiting job just leaves the queue."""
        with self._lock:
            if self._status in FINISHED:
                return
            self._stop_reason = self._stop_reason or reason
        self._stop.set()
        if self._queue is not None and self._queue.cancel(self):
            self._left_queue(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run's thread has ended (tests and shutdown); True if it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread is None and not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        if self._thread is not None:
            self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            return not self._thread.is_alive()
        return True

    # -------------------------------------------------------------- run by the queue

    def _set_status(self, status: Status) -> None:
        with self._lock:
            self._status = status

    def _left_queue(self, reason: str) -> None:
        """Taken out of the queue before it ever ran (stopped by the user, or its page is gone)."""
        with self._lock:
            self._stop_reason, self._status = self._stop_reason or reason, "stopped"

    def _launch(self) -> None:
        """Start the training thread (called by the queue, under its lock)."""
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._set_status("running")
        self._thread = threading.Thread(target=self._run, name=f"training-{self.id[:8]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lower_thread_priority(int(env_number(TRAINING_NICE_ENV, DEFAULT_TRAINING_NICE, 0)))
        try:
            model = build_model(self.task, self.tokenizer, self.settings.model_settings(), seed=self.settings.seed)
            example = self.task.make_sequences(1, torch.Generator().manual_seed(EXAMPLE_SEED))[:, :-1]  # (1, 2n-1)
            self._trace_attention(model, example, 0)
            event = None
            for event in train(model, self.task, self.settings.train_config(), self._stop):
                self._record(event)
                if event.kind in ("done", "stopped") or (event.kind == "step" and event.step % self.attention_every == 0):
                    self._trace_attention(model, example, event.step)
                if self.abandoned() and not self._stop.is_set():
                    with self._lock:
                        self._stop_reason = f"no open Train page for {self.heartbeat_timeout:.0f} s (tab closed?)"
                    self._stop.set()
            with self._lock:
                self._model = model.cpu().eval()
                self._status = "done" if event is not None and event.kind == "done" else "stopped"
        except Exception as error:  # noqa: BLE001 - any failure is shown on the page; the server keeps running
            with self._lock:
                self._error, self._status = f"{type(error).__name__}: {error}", "failed"
        finally:
            if self._queue is not None:
                self._queue.finished(self)

    def _record(self, event: TrainEvent) -> None:
        with self._lock:
            self._events.append(event)

    def _trace_attention(self, model, example: torch.Tensor, step: int) -> None:
        """Trace the fixed example between optimiser steps (trace() switches to eval and back)."""
        record = trace(model, example)
        weights = torch.stack([layer.self_attention.weights[0] for layer in record.decoder.layers])  # (L, H, T, T)
        snapshot = AttentionSnapshot(step, weights, tuple(example[0].tolist()))
        with self._lock:
            self._attention = snapshot

    def reverse(self, text: str) -> str:
        """The trained model's greedy answer for n symbols (ValueError when there is no model or bad text)."""
        with self._lock:
            model = self._model
        if model is None:
            raise ValueError("there is no trained model yet.")
        return self.task.run(model, self.tokenizer, text)

    # -------------------------------------------------------------- saving

    def save(self, name: str, overwrite: bool = False, directory: Path | None = None) -> Path:
        """Save the trained model as directory/name (default: the user models folder).

        The checkpoint's meta.owner is the tag of this job's owner (app_lib.ownership).
        Raises NameTakenError when that name exists and overwrite is False (the page asks first),
        NotYoursError when it exists and another session saved it (never replaced),
        CheckpointError for a bad name or a run with nothing to save.
        """
        if not NAME_PATTERN.fullmatch(name or ""):
            raise CheckpointError("a name is 1-48 letters, digits, '-' or '_', starting with a letter or digit.")
        with self._lock:
            model, events = self._model, list(self._events)
        if model is None:
            raise CheckpointError("this run has no trained model to save (it is still training, or it failed).")
        if directory is None:
            from .checkpoints import user_models_dir  # imports streamlit; kept out of the thread's path

            directory = user_models_dir()
        target = Path(directory) / name
        tag = owner_tag(self.owner)
        with USER_FOLDER_LOCK:
            if target.exists() and not overwrite:
                raise NameTakenError(f"a model called {name!r} already exists.")
            check_may_replace(target, tag)  # somebody else's model is never replaced
            save_checkpoint(target, model, self.tokenizer, with_owner(self._meta(events), tag), overwrite=overwrite)
        with self._lock:
            self._saved_as = name
        return target

    def _meta(self, events: list[TrainEvent]) -> dict:
        last = events[-1]
        return {
            "task": self.task.describe(),
            "command": "trained in the app (Train page)",
            "train": self.settings.train_config().to_dict(),
            "settings": asdict(self.settings),
            "steps": last.step,
            "final_loss": last.loss,
            "final_accuracy": last.accuracy,
            "train_seconds": round(last.elapsed, 1),
            "metrics": {k: v for k, v in last.metrics.items() if not isinstance(v, (list, dict))},
        }


class NameTakenError(CheckpointError):
    """A checkpoint with this name exists; saving again needs the user's explicit yes."""



def lower_thread_priority(steps: int) -> None:
    """Add `steps` (capped at 19) to the calling thread's nice value; silently nothing where that is not possible."""
    if steps <= 0 or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + steps))
    except OSError:
        pass  # a platform without per-thread priorities: training just competes as before


def start_job(settings: TrainSettings, owner: str, queue: JobQueue | None = None, **options) -> TrainingJob:
    """Make a job (ConfigError when the settings are refused) and submit it (QueueError when refused)."""
    job = TrainingJob(settings, owner, **options)
    (queue or JOB_QUEUE).submit(job)
    return job


__all__ = [
    "JOB_QUEUE", "LIMITS", "POSITIONAL", "AttentionSnapshot", "JobQueue", "JobSnapshot", "NameTakenError",
    "QueueError", "TrainSettings", "TrainingJob", "start_job",
]
