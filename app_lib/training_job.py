"""Training runs started from the Train page: one TrainingJob per session, run by the server's queue.

No Streamlit here: the page keeps a `TrainingJob` in `st.session_state` and polls
`JOB_QUEUE.snapshot(job)` from a timed fragment.

    TrainingJob   one run's state: its events, the latest attention of a fixed example, its status;
                  stop(), heartbeat(), answer(), save(). The queue calls queued() and
                  start(on_end, threads); the job calls on_end(job) once when its run has ended.
    JobQueue      (training_queue.py) at most $TP_MAX_TRAINING_RUNS (default 2) runs at once
    runners       (training_runners.py) where a run trains: a worker process (the default) or a thread
    records       (explain/training.py) TrainSettings, JobSnapshot, AttentionSnapshot

Why a worker process per run by default (benchmarks/train_in_app.py; RESULTS.md, "Training runner:
thread vs process"): a run in a server thread trains with the server's torch threads, which thrash on a
busy 2-core machine (the default run: 77 s in a thread, 15 s in a worker, at load 4-8), and shares the
interpreter's lock with the page runs (two runs trained 26% fewer steps/s beside page re-runs). A worker
trains with cores // max runs torch threads, within 1.3x of `python -m model.train` (0.94x), and page
re-runs stayed at p95 0.23 s beside two of them. Costs: ~330 MiB and a ~2-5 s start per run. Neither
design touches `sys.setswitchinterval` or thread priorities.

A run whose browser tab closed stops itself: the page's fragment calls `job.heartbeat()`
every second or so, and a job with no heartbeat for $TP_TRAINING_HEARTBEAT_S seconds
(default 60) stops between steps (a waiting one leaves the queue).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from torch import nn

from explain.training import (
    FINISHED,
    LIMITS,
    NO_QUEUE,
    POSITIONAL,
    AttentionSnapshot,
    JobSnapshot,
    QueuePlace,
    Status,
    TrainSettings,
)
from explain.training_generation import GenerationCheck, generation_check
from model import CheckpointError, ConfigError
from model.tasks import task_from_dict
from model.training import TrainEvent

from .training_queue import JOB_QUEUE, JobQueue, QueueError, env_number
from .training_run import Progress
from .training_runners import ProcessRunner, ThreadRunner
from .user_models import NameTakenError, owner_tag, save_user_model

HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S = "TP_TRAINING_HEARTBEAT_S", 60.0
RunnerKind = Literal["process", "thread"]
DEFAULT_RUNNER: RunnerKind = "process"
PAGE_GONE = "no open Train page for {:.0f} s (tab closed?)"


class TrainingJob:
    """One training run (reversal or dates), trained by a runner once its queue starts it."""

    def __init__(self, settings: TrainSettings, owner: str, heartbeat_timeout: float | None = None,
                 attention_every: int = 10, runner: RunnerKind = DEFAULT_RUNNER,
                 clock: Callable[[], float] = time.monotonic):
        problems = settings.problems()
        if problems:
            raise ConfigError(" ".join(problems))
        self.id = uuid.uuid4().hex
        self.settings, self.owner, self.runner_kind = settings, owner, runner
        self.heartbeat_timeout = heartbeat_timeout or env_number(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S, 1.0)
        self.attention_every = attention_every
        self.task = task_from_dict(settings.task_description())
        self.tokenizer = self.task.make_tokenizer()
        self._clock = clock
        self._lock = threading.Lock()
        self._ended = threading.Event()  # set once the run is over and its queue has been told
        self._events: list[TrainEvent] = []
        self._status: Status = "new"
        self._attention: AttentionSnapshot | None = None
        self._error: str | None = None
        self._stop_reason: str | None = None
        self._saved_as: str | None = None
        self._model: nn.Module | None = None
        self._generation: GenerationCheck | None = None
        self._runner: ProcessRunner | ThreadRunner | None = None
        self._on_end: Callable[[TrainingJob], None] | None = None
        self._last_heartbeat = clock()

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

    @property
    def worker_pid(self) -> int | None:
        """The id of the run's worker process once started (None for a thread or a job not started)."""
        runner = self._runner
        return runner.pid if isinstance(runner, ProcessRunner) else None

    def heartbeat(self) -> None:
        """The page is still open (call on every fragment run)."""
        self._last_heartbeat = self._clock()

    def abandoned(self) -> bool:
        """True when the page has not called heartbeat() for heartbeat_timeout seconds."""
        return self._clock() - self._last_heartbeat > self.heartbeat_timeout

    def snapshot(self, place: QueuePlace = NO_QUEUE) -> JobSnapshot:
        """A consistent copy of the run (JobQueue.snapshot adds the place in the queue)."""
        with self._lock:
            return JobSnapshot(self._status, self.settings, tuple(self._events), self._attention, self._error,
                               self._stop_reason, place.position, place.running, place.waiting, place.max_runs,
                               self._saved_as)

    def stop(self, reason: str = "stopped by you") -> None:
        """Stop between steps (the model keeps what it learned); a job not started yet never starts."""
        with self._lock:
            if self._status in FINISHED:
                return
            self._stop_reason = self._stop_reason or reason
            runner = self._runner
            if runner is None:
                self._status = "stopped"
                self._ended.set()
        if runner is not None:
            runner.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended and its queue knows (tests and shutdown); True if it has."""
        if not self._ended.wait(timeout):
            return False
        runner = self._runner
        return runner is None or runner.join(timeout)

    def answer(self, text: str) -> str:
        """The trained model's greedy answer: n symbols reversed, or a date in ISO form (ValueError when
        there is no model or the text cannot be read)."""
        with self._lock:
            model = self._model
        if model is None:
            raise ValueError("there is no trained model yet.")
        return self.task.run(model, self.tokenizer, text)

    def generation_check(self) -> GenerationCheck | None:
        """For a reversal run without the causal mask: what the model does when it generates (computed once)."""
        with self._lock:
            model, done = self._model, self._generation
        if done is not None or model is None or self.settings.task != "reversal" or self.settings.causal:
            return done
        check = generation_check(model, self.task, self.tokenizer)  # type: ignore[arg-type]  # a ReversalTask
        with self._lock:
            self._generation = check
        return check

    def save(self, name: str, overwrite: bool = False, directory: Path | None = None) -> Path:
        """Save the trained model in the user-model store as `name`, owned by this job's owner.

        Raises what app_lib.user_models.save_user_model raises (NameTakenError when the name exists
        and overwrite is False, NotYoursError when another session saved it, CheckpointError for a
        bad name), and CheckpointError for a run with nothing to save.
        """
        with self._lock:
            model, events = self._model, list(self._events)
        if model is None:
            raise CheckpointError("this run has no trained model to save (it is still training, or it failed).")
        target = save_user_model(name, model, self.tokenizer, self._meta(events), owner_tag(self.owner),
                                 overwrite=overwrite, directory=directory)
        with self._lock:
            self._saved_as = name
        return target

    def _meta(self, events: list[TrainEvent]) -> dict:
        last = events[-1] if events else None
        meta = {"task": self.task.describe(), "command": "trained in the app (Train page)",
                "train": self.settings.train_config().to_dict(), "settings": asdict(self.settings)}
        if last is not None:
            meta |= {"steps": last.step, "final_loss": last.loss, "final_accuracy": last.accuracy,
                     "train_seconds": round(last.elapsed, 1),
                     "metrics": {k: v for k, v in last.metrics.items() if not isinstance(v, (list, dict))}}
        return meta

    # -------------------------------------------------------------- called by the queue

    def queued(self) -> None:
        """Accepted by a queue; waits there until start()."""
        with self._lock:
            if self._status == "new":
                self._status = "queued"

    def start(self, on_end: Callable[[TrainingJob], None], threads: int = 1) -> bool:
        """Start training with `threads` torch threads (a worker process); False if stopped meanwhile.

        on_end(job) is called once, from the runner's thread, after the run has ended.
        """
        name = f"training-{self.id[:8]}"
        if self.runner_kind == "process":
            runner = ProcessRunner(name, self.settings, self.attention_every, self._progress, self._run_ended, threads)
        else:
            runner = ThreadRunner(name, self.settings, self.attention_every, self._progress, self._run_ended)
        with self._lock:
            if self._status in FINISHED:
                return False
            self._status, self._runner, self._on_end = "running", runner, on_end
        try:
            runner.start()
        except OSError as error:  # no process could be started: the run fails, the page says why
            with self._lock:
                self._status, self._error, self._runner = "failed", f"could not start training: {error}", None
                self._ended.set()
            return False
        return True

    # -------------------------------------------------------------- called by the runner

    def _progress(self, item: Progress) -> None:
        with self._lock:
            if isinstance(item, AttentionSnapshot):
                self._attention = item
            else:
                self._events.append(item)
        if self.abandoned():
            self.stop(PAGE_GONE.format(self.heartbeat_timeout))

    def _run_ended(self, model: nn.Module | None, error: str | None) -> None:
        with self._lock:
            self._model = model
            last = self._events[-1].kind if self._events else None
            self._status = "failed" if error is not None else "done" if last in ("done", "learned") else "stopped"
            self._error = error
            on_end = self._on_end
        if on_end is not None:
            on_end(self)
        self._ended.set()


def start_job(settings: TrainSettings, owner: str, queue: JobQueue | None = None, **options) -> TrainingJob:
    """Make a job (ConfigError when the settings are refused) and submit it (QueueError when refused)."""
    job = TrainingJob(settings, owner, **options)
    (queue or JOB_QUEUE).submit(job)
    return job


__all__ = [
    "JOB_QUEUE", "LIMITS", "POSITIONAL", "AttentionSnapshot", "JobQueue", "JobSnapshot", "NameTakenError",
    "QueueError", "TrainSettings", "TrainingJob", "start_job",
]
