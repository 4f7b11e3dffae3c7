"""Training tasks: what data a model sees, how it is scored, and how to try it.

Legend: B batch, T sequence length, V vocab.

Every task is a frozen dataclass with the same surface, so one training loop and
one set of pages serve them all:

    task.name                                  "reversal" | "dates" | "shakespeare"
    task.model_kind                            "gpt" (decoder-only) | "seq2seq" (encoder-decoder)
    task.describe() -> dict                    JSON, stored in a checkpoint's meta["task"]
    task.make_tokenizer() -> Tokenizer
    task.required_max_len -> int               the model.config.max_len the task needs at least
    task.sample_batch(batch_size, generator)   a batch of CPU tensors (call batch.to(device))
    task.loss(model, batch) -> (loss, metrics) metrics has "accuracy" over scored tokens
    task.evaluate(model, num_sequences, seed, device) -> dict
    task.run(model, tokenizer, text) -> str    try the trained model on user text

`task_from_dict(task.describe())` gives the task back.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:  # the real imports are lazy, see __getattr__ below
    from model.tasks.dates import DatesTask
    from model.tasks.reversal import ReversalTask
    from model.tasks.shakespeare import ShakespeareTask

    TASKS: dict[str, type]

IGNORE_INDEX = -100  # target value of positions that are not scored


class Task(Protocol):
    """What the training loop and the pages rely on (see the module docstring)."""

    name: str
    model_kind: str

    def describe(self) -> dict[str, Any]: ...
    def make_tokenizer(self) -> Any: ...
    def sample_batch(self, batch_size: int, generator: torch.Generator) -> Any: ...
    def loss(self, model: Any, batch: Any) -> tuple[Tensor, dict[str, float]]: ...
    def evaluate(self, model: Any, num_sequences: int = 2000, seed: int = 0, device: str = "cpu") -> dict: ...
    def run(self, model: Any, tokenizer: Any, text: str) -> str: ...


class TensorBatch:
    """Mixin for batch dataclasses whose fields are all tensors."""

    def to(self, device: torch.device | str):
        """The same batch with every tensor moved to device."""
        return type(self)(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __len__(self) -> int:
        return getattr(self, fields(self)[0].name).shape[0]


@dataclass
class LMBatch(TensorBatch):
    """Next-token prediction: y[:, t] is the token that follows x[:, :t+1]."""

    x: Tensor  # (B, T) long
    y: Tensor  # (B, T) long, IGNORE_INDEX where not scored


def token_loss(logits: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mean cross-entropy over scored targets, plus their accuracy."""
    vocab = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, vocab).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)
    scored = targets != IGNORE_INDEX  # (B, T)
    n = int(scored.sum())
    correct = ((logits.argmax(-1) == targets) & scored).sum()
    accuracy = float(correct) / n if n else 0.0
    return loss, {"loss": float(loss.detach()), "accuracy": accuracy, "tokens": float(n)}


def task_params(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments in a describe() dict; ValueError on unknown keys."""
    known = {f.name for f in fields(cls) if f.init and not f.name.startswith("_")}
    unknown = sorted(set(d) - known - {"name"})
    if unknown:
        raise ValueError(f"{d.get('name')} task description has unknown keys {unknown}; known: {sorted(known)}.")
    return {k: d[k] for k in known if k in d}


def logits_of(output: Any) -> Tensor:
    """The logits of a model call (tolerates models that return (logits, extra))."""
    return output[0] if isinstance(output, (tuple, list)) else output


def model_device(model: Any) -> torch.device:
    """Device of the model's first parameter (CPU for parameter-less models)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def model_max_len(model: Any) -> int | None:
    """model.config.max_len, or None when the model does not say."""
    return getattr(getattr(model, "config", None), "max_len", None)


@contextmanager
def eval_mode(model: Any) -> Iterator[Any]:
    """model.eval() and no grad inside the block; the previous train/eval mode is restored after."""
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        if was_training:
            model.train()


# The task classes load lazily (PEP 562): the task modules import the helpers above,
# and `python -m model.tasks.shakespeare` must not find its module already imported.
_TASK_MODULES = {
    "reversal": ("model.tasks.reversal", "ReversalTask"),
    "dates": ("model.tasks.dates", "DatesTask"),
    "shakespeare": ("model.tasks.shakespeare", "ShakespeareTask"),
}


def __getattr__(name: str) -> Any:
    for module, cls in _TASK_MODULES.values():
        if name == cls:
            return getattr(importlib.import_module(module), cls)
    if name == "TASKS":  # {"reversal": ReversalTask, "dates": DatesTask, "shakespeare": ShakespeareTask}
        return {key: getattr(importlib.import_module(m), c) for key, (m, c) in _TASK_MODULES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def task_from_dict(d: Any) -> Task:
    """Rebuild a task from its describe() dict; ValueError when d is not one."""
    if not isinstance(d, dict):
        raise ValueError(f"task description must be a dict, got {type(d).__name__}.")  # noqa: TRY004
    name = d.get("name")
    if name not in _TASK_MODULES:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(_TASK_MODULES)}.")
    module, cls = _TASK_MODULES[name]
    return getattr(importlib.import_module(module), cls).from_dict(d)


__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "DatesTask",
    "LMBatch",
    "ReversalTask",
    "ShakespeareTask",
    "Task",
    "task_from_dict",
    "token_loss",
]
