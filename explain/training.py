"""The Train page's records: what a reversal run is set up as, and a snapshot of it while it trains.

Legend: L layers, H heads, n symbols to reverse, T = 2n - 1 positions of the fixed example.

    TrainSettings      what the student chose; `problems()` lists what is refused, before anything starts
    AttentionSnapshot  the attention of a fixed example at one step, (L, H, T, T)
    QueuePlace         where a run stands in the server's queue
    JobSnapshot        a consistent copy of a run for one page run, and every number the page
                       derives from its events (seconds left, accuracies, the example's answer)

No Streamlit here; the runner that fills these lives in app_lib/training_*.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch

from model import ConfigError, GPTConfig
from model.training import TrainConfig, TrainEvent, check_run

Status = Literal["new", "queued", "running", "done", "stopped", "failed"]
FINISHED: tuple[Status, ...] = ("done", "stopped", "failed")
EXAMPLE_SEED = 1234  # the fixed example whose attention the page shows forming

# (min, max) per setting: small enough that a run finishes in minutes on a shared 2-core server.
LIMITS: dict[str, tuple[float, float]] = {
    "n": (2, 16), "vocab": (2, 64), "d_model": (8, 256), "n_heads": (1, 16), "n_kv_heads": (1, 16),
    "n_layers": (1, 4), "lr": (1e-5, 0.1), "batch_size": (1, 256), "steps": (10, 3000), "seed": (0, 2**31 - 1),
}
SHOWN_LIMITS = ("n", "vocab", "d_model", "n_layers", "steps", "batch_size")  # the ones the page lists
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

    def task_description(self) -> dict[str, str | int]:
        return {"name": "reversal", "n": self.n, "vocab": self.vocab}

    def model_settings(self) -> dict[str, str | int | bool]:
        return {"d_model": self.d_model, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
                "n_layers": self.n_layers, "pos_encoding": self.pos_encoding, "causal": self.causal}

    def train_config(self) -> TrainConfig:
        """Evaluations every ~10% of the run (every 10 to 100 steps) feed the accuracy charts."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           warmup_steps=min(20, self.steps // 10), eval_every=min(100, max(10, self.steps // 10)),
                           eval_sequences=500, device="cpu")

    def to_dict(self) -> dict[str, str | int | float | bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, str | int | float | bool]) -> TrainSettings:
        return cls(**values)  # type: ignore[arg-type]  # the fields check themselves in problems()

    @staticmethod
    def limits_text() -> str:
        """The limits the page lists under the form, e.g. "n ≤ 16, vocab ≤ 64, ..."."""
        return ", ".join(f"{k} ≤ {LIMITS[k][1]:g}" for k in SHOWN_LIMITS)


@dataclass(frozen=True)
class AttentionSnapshot:
    """The attention weights of the fixed example at one step: (L, H, T, T), T = 2n - 1 inputs."""

    step: int
    weights: torch.Tensor  # (L, H, T, T)
    example_ids: tuple[int, ...]  # (T,)
    tokens: tuple[str, ...]  # (T,) the example's tokens, for the axis labels


@dataclass(frozen=True)
class QueuePlace:
    """Where a run stands in the server's training queue."""

    position: int | None  # 1 = next to start; None when not waiting
    running: int  # runs training now
    waiting: int  # runs waiting
    max_runs: int  # runs allowed at once


NO_QUEUE = QueuePlace(None, 0, 0, 0)


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a run's state for one page run (the run keeps going meanwhile)."""

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
    def step_events(self) -> list[TrainEvent]:
        return [e for e in self.events if e.kind == "step"]

    @property
    def evaluations(self) -> list[TrainEvent]:
        return [e for e in self.events if e.kind != "step"]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction_done(self) -> float:
        e = self.latest
        return e.step / e.total_steps if e is not None else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Time left at the run's average pace so far; None before the first step."""
        e = self.latest
        if e is None or e.step == 0:
            return None
        return e.elapsed / e.step * (e.total_steps - e.step)

    @property
    def steps_done(self) -> int:
        return self.latest.step if self.latest is not None else 0

    @property
    def seconds_so_far(self) -> float:
        return self.latest.elapsed if self.latest is not None else 0.0

    @property
    def eval_every(self) -> int:
        return self.settings.train_config().eval_every

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing, 1 / vocab, as the task's evaluation reports it; None before one."""
        evals = self.evaluations
        return float(evals[-1].metrics["chance"]) if evals else None

    @property
    def accuracy_by_position(self) -> list[float]:
        """The latest evaluation's accuracy at each predicted position, 2n - 1 of them (empty before one)."""
        evals = self.evaluations
        return [float(a) for a in evals[-1].metrics["accuracy_by_position"]] if evals else []

    @property
    def example_question(self) -> str | None:
        """The fixed example's n symbols as the model reads them ("3 1 4 ..."); None before its first trace."""
        if self.attention is None:
            return None
        return " ".join(self.attention.tokens[: self.settings.n])
