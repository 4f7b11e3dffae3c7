"""One reversal run's body, the same in a server thread and in a worker process.

Legend: L layers, H heads, T = 2n - 1 positions of the fixed example.

`train_reversal` builds the model, runs model.training.train and hands every TrainEvent to
`report`; every `attention_every` steps (and at the start and the end) it also reports the
attention of a fixed example, traced between optimiser steps so the weights never change under
it. It knows nothing of queues, pages or processes. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from safetensors.torch import load as load_weights
from safetensors.torch import save as save_weights
from torch import nn

from explain.training import EXAMPLE_SEED, AttentionSnapshot, TrainSettings
from model import trace
from model.recipes import build_model
from model.tasks import task_from_dict
from model.training import TrainEvent, train

Progress = TrainEvent | AttentionSnapshot
Report = Callable[[Progress], None]


@dataclass(frozen=True)
class WorkerDone:
    """A worker's run ended (done or stopped): its weights, as safetensors bytes."""

    weights: bytes


@dataclass(frozen=True)
class WorkerFailed:
    """A worker's run raised: the text the page shows."""

    error: str


Message = Progress | WorkerDone | WorkerFailed  # what a worker process sends (training_worker.py)


class StopFlag(Protocol):
    """A threading.Event, or anything else the loop can ask between steps."""

    def is_set(self) -> bool: ...


def new_model(settings: TrainSettings) -> nn.Module:
    """The untrained model of a run (seeded: the same settings give the same start)."""
    task = task_from_dict(settings.task_description())
    return build_model(task, task.make_tokenizer(), settings.model_settings(), seed=settings.seed)


def train_reversal(settings: TrainSettings, stop: StopFlag, report: Report, attention_every: int) -> nn.Module:
    """Train a new model with `settings` until done or `stop` is set; returns it on the CPU, in eval mode."""
    task = task_from_dict(settings.task_description())
    tokenizer = task.make_tokenizer()
    model = build_model(task, tokenizer, settings.model_settings(), seed=settings.seed)
    example = task.make_sequences(1, torch.Generator().manual_seed(EXAMPLE_SEED))[:, :-1]  # (1, T)
    tokens = tuple(tokenizer.id_to_token(i) for i in example[0].tolist())
    report(attention_of(model, example, tokens, 0))
    for event in train(model, task, settings.train_config(), stop):  # type: ignore[arg-type]  # any StopFlag
        report(event)
        if event.kind in ("done", "stopped") or (event.kind == "step" and event.step % attention_every == 0):
            report(attention_of(model, example, tokens, event.step))
    return model.cpu().eval()


def attention_of(model: nn.Module, example: torch.Tensor, tokens: tuple[str, ...], step: int) -> AttentionSnapshot:
    """Trace the fixed example (trace() switches to eval and back)."""
    record = trace(model, example)
    weights = torch.stack([layer.self_attention.weights[0] for layer in record.decoder.layers])  # (L, H, T, T)
    return AttentionSnapshot(step, weights.detach().cpu().clone(), tuple(example[0].tolist()), tokens)


def weights_to_bytes(model: nn.Module) -> bytes:
    """The model's weights as a safetensors document (tied weights stored as copies)."""
    return save_weights({k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()})


def model_from_bytes(settings: TrainSettings, data: bytes) -> nn.Module:
    """The run's model with the weights of `weights_to_bytes` (strict: every key, no other)."""
    model = new_model(settings)
    model.load_state_dict(load_weights(data), strict=True)
    return model.eval()


def describe_failure(error: BaseException) -> str:
    """The text a failed run shows on the page."""
    return f"{type(error).__name__}: {error}"
