"""The server's training queue: at most $TP_MAX_TRAINING_RUNS (default 2) runs train at once.

The others wait first come, first served, each with a visible position; one run per session
(the job's `owner`). A waiting job whose page stopped sending heartbeats leaves the queue.
When a run ends, `finished` frees its slot and starts the next one. No Streamlit here.
See training_job.py for the jobs themselves.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .training_job import TrainingJob

MAX_RUNS_ENV, DEFAULT_MAX_RUNS = "TP_MAX_TRAINING_RUNS", 2


def env_number(name: str, default: float, minimum: float) -> float:
    """A number from the environment; the default when it is missing, unreadable or below minimum."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= minimum else default


class QueueError(Exception):
    """A run the queue refuses (this session already has one)."""


@dataclass
class JobQueue:
    """Admits at most max_runs jobs at once, first come first served, one job per owner."""

    max_runs_override: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _running: list[TrainingJob] = field(default_factory=list, repr=False)
    _waiting: deque = field(default_factory=deque, repr=False)

    @property
    def max_runs(self) -> int:
        if self.max_runs_override is not None:
            return self.max_runs_override
        return int(env_number(MAX_RUNS_ENV, DEFAULT_MAX_RUNS, 1))

    def submit(self, job: TrainingJob) -> None:
        """Start the job now if a slot is free, else put it at the back of the queue."""
        with self._lock:
            self._prune()
            if any(j.owner == job.owner for j in [*self._running, *self._waiting]):
                raise QueueError("this session already has a training run; stop it before starting another.")
            if job.status != "new":
                raise QueueError("this run was already started once; make a new one.")
            job._queue = self
            if len(self._running) < self.max_runs:
                self._running.append(job)
                job._launch()
            else:
                job._set_status("queued")
                self._waiting.append(job)

    def cancel(self, job: TrainingJob) -> bool:
        """Take a waiting job out of the queue; False when it is not waiting."""
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def finished(self, job: TrainingJob) -> None:
        """A running job ended: free its slot and start the next waiting ones."""
        with self._lock:
            if job in self._running:
                self._running.remove(job)
            self._prune()
            while self._waiting and len(self._running) < self.max_runs:
                nxt = self._waiting.popleft()
                self._running.append(nxt)
                nxt._launch()

    def state_of(self, job: TrainingJob) -> tuple[int | None, int, int, int]:
        """(1-based position if waiting, runs training, runs waiting, max runs)."""
        with self._lock:
            self._prune()
            position = self._waiting.index(job) + 1 if job in self._waiting else None
            return position, len(self._running), len(self._waiting), self.max_runs

    def counts(self) -> tuple[int, int]:
        """(runs training, runs waiting)."""
        with self._lock:
            return len(self._running), len(self._waiting)

    def _prune(self) -> None:
        """Drop waiting jobs whose page is gone (caller holds the lock)."""
        for job in [j for j in self._waiting if j.abandoned()]:
            self._waiting.remove(job)
            job._left_queue("no open Train page while waiting (tab closed?)")


JOB_QUEUE = JobQueue()  # the server's queue, shared by every session
