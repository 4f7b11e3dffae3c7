"""What a Train-page run is set up as: the task, the model, how long, and when it counts as learned.

Legend: n symbols to reverse, V vocab, T = 2n - 1 positions a reversal model predicts.

    TrainSettings   what the student chose; `problems()` lists what is refused, before anything starts
    TaskSpec        per task: its title, the evaluation metric that says "learned", how often to evaluate
    LossFloor       the best possible loss of a run, with its formula (reversal: the first half is random)

No Streamlit here (explain/training.py holds the snapshots of a run; app_lib/training_*.py runs it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from model import ConfigError
from model.recipes import build_config
from model.tasks import task_from_dict
from model.training import TrainConfig, check_run

TaskName = Literal["reversal", "dates"]
TASK_NAMES: tuple[TaskName, ...] = ("reversal", "dates")
LEARNED_AT = 0.99  # the share of the task's learned metric at which a run has "learned"

# (min, max) per setting: small enough that a run finishes in minutes on a shared 2-core server.
LIMITS: dict[str, tuple[float, float]] = {
    "n": (2, 16), "vocab": (2, 64), "d_model": (8, 256), "n_heads": (1, 16), "n_kv_heads": (1, 16),
    "n_layers": (1, 4), "lr": (1e-5, 0.1), "batch_size": (1, 256), "steps": (10, 3000), "seed": (0, 2**31 - 1),
    "kv_latent_dim": (1, 256),
}
SHOWN_LIMITS = ("n", "vocab", "d_model", "n_layers", "steps", "batch_size")  # the ones the page lists
POSITIONAL = ("learned", "sinusoidal", "rope", "none")
ATTENTION_KINDS = ("standard", "mla")  # standard: MHA/GQA/MQA by n_kv_heads; mla: latent K/V


@dataclass(frozen=True)
class TaskSpec:
    """What the Train page needs to know of a task: how it is scored while training and when it has learned."""

    name: TaskName
    title: str
    metric: str  # the key of the task's evaluate() that says "learned" at LEARNED_AT
    metric_label: str
    eval_sequences: int  # per evaluation: a few hundred, so evaluating often stays cheap
    eval_every: int  # steps between evaluations while watching for "learned"
    what_learned: str  # the end of "The model has learned to ..."


TASK_SPECS: dict[str, TaskSpec] = {
    "reversal": TaskSpec("reversal", "reversal (GPT)", "second_half_accuracy", "second half", 256, 2,
                         "write {n} random symbols backwards"),
    "dates": TaskSpec("dates", "dates (encoder-decoder)", "exact_match", "exact match", 100, 20,
                      'rewrite a date written in {formats} human formats ("25 december 2023") as yyyy-mm-dd'),
}


@dataclass(frozen=True)
class LossFloor:
    """The lowest loss a perfect model can reach, and why: `formula` is printed beside the line."""

    value: float
    formula: str


def reversal_loss_floor(n: int, vocab: int) -> LossFloor:
    """Reversal's best loss: the n - 1 first-half predictions are random (ln V each), the n others certain.

    Averaged over the 2n - 1 predicted positions: (n - 1)/(2n - 1) · ln V, e.g. 7/15 · ln 10 ≈ 1.07 for
    n = 8, V = 10 (the fraction is always in lowest terms: gcd(n - 1, 2n - 1) = 1).
    """
    value = (n - 1) / (2 * n - 1) * math.log(vocab)
    return LossFloor(value, f"best possible: (n−1)/(2n−1) · ln V = {n - 1}/{2 * n - 1} · ln {vocab} ≈ {value:.2f}")


@dataclass(frozen=True)
class TrainSettings:
    """A run as the Train page sets it up. Reversal's defaults learn in about 40 steps, dates' in about 300."""

    task: str = "reversal"
    n: int = 8  # reversal only
    vocab: int = 10  # reversal only
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 4
    n_layers: int = 2
    lr: float = 3e-3
    batch_size: int = 64
    steps: int = 200
    seed: int = 0
    pos_encoding: str = "learned"
    causal: bool = True  # reversal only: False lets each position see its own answer
    attention: str = "standard"
    kv_latent_dim: int = 32  # MLA only: the width of the latent c_KV
    stop_when_learned: bool = True

    @classmethod
    def defaults(cls, task: str) -> TrainSettings:
        """Each task's own starting point (dates: an encoder-decoder of 2 + 2 layers, 600 steps at most)."""
        return cls(task="dates", steps=600, pos_encoding="sinusoidal") if task == "dates" else cls()

    @property
    def spec(self) -> TaskSpec:
        return TASK_SPECS[self.task]

    def problems(self) -> list[str]:
        """Everything that makes this run refused (empty when it may start)."""
        if self.task not in TASK_SPECS:
            return [f"task must be one of {TASK_NAMES}, got {self.task!r}."]
        found = [f"{name} must be between {low:g} and {high:g} here (got {getattr(self, name):g})."
                 for name, (low, high) in LIMITS.items() if not low <= getattr(self, name) <= high]
        if self.pos_encoding not in POSITIONAL:
            found.append(f"positional encoding must be one of {POSITIONAL}, got {self.pos_encoding!r}.")
        if self.attention not in ATTENTION_KINDS:
            found.append(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}.")
        elif self.attention == "mla" and self.task != "reversal":
            found.append("MLA is offered for the GPT (the reversal task) only.")
        if not self.causal and self.task != "reversal":
            found.append("the causal-mask switch is for the reversal task only.")
        if found:
            return found
        try:
            task = task_from_dict(self.task_description())
            config = build_config(task, task.make_tokenizer(), self.model_settings())
            check_run(config, self.train_config(), task.required_max_len)
        except ConfigError as error:
            return [str(error)]
        return []

    def task_description(self) -> dict[str, str | int]:
        return {"name": "reversal", "n": self.n, "vocab": self.vocab} if self.task == "reversal" else {"name": "dates"}

    def model_settings(self) -> dict[str, str | int | bool]:
        """The model's shape (vocab and max_len come from the task: model/recipes.py build_config)."""
        shape: dict[str, str | int | bool] = {"d_model": self.d_model, "n_heads": self.n_heads,
                                              "n_layers": self.n_layers, "pos_encoding": self.pos_encoding}
        if self.attention == "mla":
            shape |= {"attention": "mla", "kv_latent_dim": self.kv_latent_dim}  # keys/values for every head
        else:
            shape["n_kv_heads"] = self.n_kv_heads
        if self.task == "dates":  # the shipped dates recipe's block, at this width
            return shape | {"d_ff": 2 * self.d_model, "norm_position": "pre", "activation": "gelu"}
        return shape | {"causal": self.causal}

    @property
    def eval_every(self) -> int:
        """Steps between evaluations: often while watching for "learned", else about 50 per run."""
        if self.stop_when_learned:
            return self.spec.eval_every
        return min(20, max(self.spec.eval_every, self.steps // 50))

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           warmup_steps=min(20, self.steps // 10), eval_every=self.eval_every,
                           eval_sequences=self.spec.eval_sequences, device="cpu",
                           stop_metric=self.spec.metric if self.stop_when_learned else "", stop_at=LEARNED_AT)

    @property
    def loss_floor(self) -> LossFloor | None:
        """The best possible loss when it is above zero: reversal with the causal mask (dates is determined)."""
        return reversal_loss_floor(self.n, self.vocab) if self.task == "reversal" and self.causal else None

    def to_dict(self) -> dict[str, str | int | float | bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, str | int | float | bool]) -> TrainSettings:
        return cls(**values)  # type: ignore[arg-type]  # the fields check themselves in problems()

    @staticmethod
    def limits_text() -> str:
        """The limits the page lists under the form, e.g. "n ≤ 16, vocab ≤ 64, ..."."""
        return ", ".join(f"{k} ≤ {LIMITS[k][1]:g}" for k in SHOWN_LIMITS)
