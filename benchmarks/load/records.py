"""What one load test records: every action, every problem, every training run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Action:
    session: int
    round: int
    page: str
    kind: str  # navigate, open, select:Layer, text, ...
    at_s: float  # seconds since the start of the run
    latency_s: float | None = None  # input event -> notRunning, in the browser
    server_s: float | None = None  # running -> notRunning
    wall_s: float | None = None  # the driver's view, including Playwright's own round trips


@dataclass
class Problem:
    session: int
    page: str
    kind: str  # exception, page_error, console_error, connection, timeout, driver
    detail: str
    at_s: float


@dataclass
class TrainingRecord:
    session: int
    clicked_s: float
    running_s: float | None = None
    finished_s: float | None = None
    final: str = "unknown"
    was_queued: bool = False
    left_at_s: float | None = None  # the tab was closed at this time

    @property
    def queue_wait_s(self) -> float | None:
        return None if self.running_s is None else self.running_s - self.clicked_s


@dataclass
class Run:
    """Everything recorded during one load test."""

    args: dict
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    round_done_s: dict[int, float] = field(default_factory=dict)  # session -> end of its first round
    rounds_end_s: float | None = None
    t0: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.t0
