"""The server's training queue: at most $TP_MAX_TRAINING_RUNS (default 2) runs train at once.

The queue owns the runs it admits. `submit` starts a job at once or queues it (first come,
first served, one run per session: the job's `owner`); it starts a job with `job.start(on_end)`
and learns that the run ended through that callback, which frees the slot and starts the next.
Jobs never see the queue. A waiting job whose page stopped sending heartbeats is stopped and
dropped whenever the queue is asked anything (`snapshot`, `counts`, `submit`, a run ending).
No Streamlit here; the jobs are in training_job.py.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explain.training import JobSnapshot, QueuePlace

if TYPE_CHECKING:
    from .training_job import TrainingJob

MAX_RUNS_ENV, DEFAULT_MAX_RUNS = "TP_MAX_TRAINING_RUNS", 2
WAITING_PAGE_GONE = "no open Train page while waiting (tab closed?)"


def env_number(name: str, default: float, minimum: float) -> float:
    """A number from the environment; the default when it is missing, unreadable or below minimum."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= minimum else default


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class QueueError(Exception):
    """A run the queue refuses (this session already has one, or the job was submitted before)."""


@dataclass
class JobQueue:
    """Admits at most max_runs jobs at once, first come first served, one job per owner."""

    max_runs_override: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _running: list[TrainingJob] = field(default_factory=list, repr=False)
    _waiting: deque[TrainingJob] = field(default_factory=deque, repr=False)

    @property
    def max_runs(self) -> int:
        if self.max_runs_override is not None:
            return self.max_runs_override
        return int(env_number(MAX_RUNS_ENV, DEFAULT_MAX_RUNS, 1))

    @property
    def threads_per_run(self) -> int:
        """Torch threads for a worker: the cores shared by the runs allowed at once (at least 1)."""
        return max(1, usable_cores() // self.max_runs)

    def submit(self, job: TrainingJob) -> None:
        """Start the job now if a slot is free, else put it at the back of the queue."""
        with self._lock:
            self._prune()
            if any(j.owner == job.owner for j in [*self._running, *self._waiting]):
                raise QueueError("this session already has a training run; stop it before starting another.")
            if job.status != "new":
                raise QueueError("this run was already started once; make a new one.")
            job.queued()
            self._waiting.append(job)
            self._start_waiting()

    def snapshot(self, job: TrainingJob) -> JobSnapshot:
        """The job's snapshot with its place in this queue."""
        with self._lock:
            self._prune()
            position = self._waiting.index(job) + 1 if job in self._waiting else None
            place = QueuePlace(position, len(self._running), len(self._waiting), self.max_runs)
        return job.snapshot(place)

    def counts(self) -> tuple[int, int]:
        """(runs training, runs waiting)."""
        with self._lock:
            self._prune()
            return len(self._running), len(self._waiting)

    def _run_ended(self, job: TrainingJob) -> None:
        """The callback a started job calls once, from its runner's thread, when its run has ended."""
        with self._lock:
            if job in self._running:
                self._running.remove(job)
            self._prune()
            self._start_waiting()

    def _start_waiting(self) -> None:
        """Start waiting jobs while slots are free (caller holds the lock)."""
        while self._waiting and len(self._running) < self.max_runs:
            job = self._waiting.popleft()
            self._running.append(job)  # before start: a run that ends at once finds itself here
            if not job.start(self._run_ended, self.threads_per_run):
                self._running.remove(job)  # stopped meanwhile

    def _prune(self) -> None:
        """Drop waiting jobs that were stopped or whose page is gone (caller holds the lock)."""
        for job in list(self._waiting):
            if job.abandoned():
                job.stop(WAITING_PAGE_GONE)
            if job.finished:
                self._waiting.remove(job)


JOB_QUEUE = JobQueue()  # the server's queue, shared by every session
