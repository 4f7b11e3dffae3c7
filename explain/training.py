"""The Train page's records: a snapshot of a run while it trains, and every number and sentence the page shows.

Legend: L layers, H heads, n symbols to reverse, T = 2n - 1 positions of the fixed reversal example;
for dates Tq decoder positions and S source characters.

    TrainSettings      (explain/training_settings.py) what the student chose, its limits and problems()
    AttentionSnapshot  the attention of a fixed example at one step: reversal's self-attention (L, H, T, T),
                       dates' cross-attention (L, H, Tq, S), the alignment of output to input characters
    QueuePlace         where a run stands in the server's queue
    JobSnapshot        a consistent copy of a run for one page run, and every number and sentence the page
                       derives from its events (seconds left, accuracies as text, "learned in N steps")
    AccuracyCurve      one accuracy line of the charts

No Streamlit here; the runner that fills these lives in app_lib/training_*.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from model.training import TrainEvent

from .training_settings import (  # noqa: F401 - re-exported: the settings' home for the runner and pages
    ATTENTION_KINDS,
    LEARNED_AT,
    LIMITS,
    POSITIONAL,
    TASK_NAMES,
    TASK_SPECS,
    LossFloor,
    TaskSpec,
    TrainSettings,
    reversal_loss_floor,
)

Status = Literal["new", "queued", "running", "done", "stopped", "failed"]
FINISHED: tuple[Status, ...] = ("done", "stopped", "failed")
EXAMPLE_SEED = 1234  # the fixed example whose attention the page shows forming


def percent(value: float) -> str:
    """0.114 -> "11%"; near the 99% mark one decimal, so 98.7% never reads as 99%."""
    return f"{100 * value:.1f}%" if 0.98 <= value < 1 else f"{100 * value:.0f}%"


@dataclass(frozen=True)
class AccuracyCurve:
    """One line of the accuracy chart: a metric of the task's evaluations, by step."""

    name: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    learned_metric: bool  # the line that says "learned" (drawn in the main colour)


@dataclass(frozen=True)
class AttentionSnapshot:
    """The attention of the fixed example at one step: reversal's self-attention (L, H, T, T) over its
    2n - 1 inputs, or dates' cross-attention (L, H, Tq, S) from the decoder's inputs to the source."""

    step: int
    weights: torch.Tensor  # (L, H, Tq, Tk)
    example_ids: tuple[int, ...]  # (Tk,) the ids the keys are
    tokens: tuple[str, ...]  # (Tk,) the keys' tokens, for the axis labels
    question: str = ""  # the fixed example as a student would type it ("3 1 4 ...", "25 december 2023")
    query_tokens: tuple[str, ...] = ()  # (Tq,) cross-attention's queries; empty: the same as tokens
    kind: Literal["self", "cross"] = "self"

    @property
    def row_tokens(self) -> tuple[str, ...]:
        return self.query_tokens or self.tokens


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
        return self.settings.eval_every

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing, 1 / vocab, as the reversal's evaluation reports it; None before one (or for dates)."""
        evals = self.evaluations
        return float(evals[-1].metrics["chance"]) if evals and "chance" in evals[-1].metrics else None

    @property
    def accuracy_by_position(self) -> list[float]:
        """The latest evaluation's accuracy at each predicted position, 2n - 1 of them (empty before one)."""
        evals = self.evaluations
        return [float(a) for a in evals[-1].metrics.get("accuracy_by_position", [])] if evals else []

    @property
    def example_question(self) -> str | None:
        """The fixed example's n symbols as the model reads them ("3 1 4 ..."); None before its first trace."""
        return self.attention.question if self.attention is not None else None

    # -------------------------------------------------------------- the numbers as text

    @property
    def learned(self) -> TrainEvent | None:
        """The evaluation that ended the run by reaching the task's mark (None if none did)."""
        e = self.latest
        return e if e is not None and e.kind == "learned" else None

    @property
    def progress_text(self) -> str | None:
        """"step 38 of 200 · loss 1.495 · 2.3 s"; None before the first step."""
        e = self.latest
        return None if e is None else f"step {e.step} of {e.total_steps} · loss {e.loss:.3f} · {e.elapsed:.1f} s"

    @property
    def progress_line(self) -> str:
        """The progress bar's text: progress_text and the time left if every step runs."""
        left = self.seconds_left
        return (self.progress_text or "") + (f", at most {left:.0f} s left" if left else "")

    @property
    def accuracy_text(self) -> str | None:
        """The latest evaluation in words, e.g. "second half 100% · first half 11% (chance 10%)"."""
        evals = self.evaluations
        if not evals:
            return None
        m = evals[-1].metrics
        if self.settings.task == "dates":
            return (f"exact match {percent(m['exact_match'])} · characters {percent(m['char_accuracy'])} "
                    f"(greedy, {m['num_sequences']} fresh dates, step {evals[-1].step})")
        return (f"second half {percent(m['second_half_accuracy'])} · first half {percent(m['first_half_accuracy'])} "
                f"(chance {percent(m['chance'])}) · {m['num_sequences']} fresh sequences, step {evals[-1].step}")

    @property
    def learned_text(self) -> str | None:
        """"Learned in 38 steps, 2.3 seconds." once the run has stopped itself at the mark."""
        e = self.learned
        return None if e is None else f"Learned in {e.step} steps, {e.elapsed:.1f} seconds."

    @property
    def outcome_text(self) -> str | None:
        """At the end, a sentence naming what was learned (or how far the run got); None while it runs."""
        evals = self.evaluations
        if not self.finished or not evals:
            return None
        s, m = self.settings, evals[-1].metrics
        value, spec = float(m[s.spec.metric]), s.spec
        if value < LEARNED_AT:
            return (f"Not learned yet: {spec.metric_label} {percent(value)} after {evals[-1].step} steps, short of "
                    f"{percent(LEARNED_AT)}. Train for more steps, or try another learning rate or size.")
        what = spec.what_learned.format(n=s.n, formats=m.get("formats", len(m.get("exact_match_by_format", {}))))
        if s.task == "dates":
            return (f"The model has learned to {what}: {percent(value)} of {m['num_sequences']} fresh dates come out "
                    f"exactly right with greedy decoding ({percent(m['char_accuracy'])} of the characters). The "
                    f"cross-attention below shows where in the source each output character reads.")
        first, chance = percent(m["first_half_accuracy"]), percent(m["chance"])
        if not s.causal:
            return (f"The model writes the reversed half right ({percent(value)} of it, teacher-forced), and the "
                    f"first half at {first} is no prediction: without the causal mask each position sees the very "
                    f"token it must predict, and copies it.")
        return (f"The model has learned to {what}: {percent(value)} of the reversed half right on "
                f"{m['num_sequences']} fresh sequences. The first half stays at chance ({first}; chance {chance}): "
                f"those symbols are random, and no model can predict them.")

    @property
    def accuracy_curves(self) -> list[AccuracyCurve]:
        """The accuracy chart's lines: reversal's two halves, or dates' exact matches and characters."""
        evals = self.evaluations
        steps = tuple(e.step for e in evals)
        lines = ([("exact_match", "exact match (greedy)"), ("char_accuracy", "characters right")]
                 if self.settings.task == "dates" else
                 [("first_half_accuracy", "first half (random: nothing to learn)"),
                  ("second_half_accuracy", "second half (the reversal)")])
        return [AccuracyCurve(name, steps, tuple(float(e.metrics[key]) for e in evals), key == self.settings.spec.metric)
                for key, name in lines]

    @property
    def target(self) -> float | None:
        """The mark the run stops at (None when it keeps going)."""
        return LEARNED_AT if self.settings.stop_when_learned else None
