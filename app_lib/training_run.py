"""One run's body (reversal or dates), the same in a server thread and in a worker process.

Legend: L layers, H heads, T = 2n - 1 positions of the fixed reversal example; Tq decoder positions
and S source characters of the fixed date.

`train_task` builds the model, runs model.training.train and hands every TrainEvent to `report`;
every `attention_every` steps (and at the start and the end) it also reports the attention of a
fixed example (reversal: self-attention; dates: cross-attention, the alignment forming), traced
between optimiser steps so the weights never change under it. The run ends by itself once the
settings' stop rule is met (TrainConfig.stop_metric). It knows nothing of queues, pages or
processes. No Streamlit here.
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


FINAL = ("done", "learned", "stopped")


def train_task(settings: TrainSettings, stop: StopFlag, report: Report, attention_every: int) -> nn.Module:
    """Train a new model with `settings` until done, learned or `stop` is set; returns it on the CPU, in eval mode."""
    task = task_from_dict(settings.task_description())
    tokenizer = task.make_tokenizer()
    model = build_model(task, tokenizer, settings.model_settings(), seed=settings.seed)
    example = fixed_example(task, tokenizer)
    report(example.snapshot(model, 0))
    for event in train(model, task, settings.train_config(), stop):  # type: ignore[arg-type]  # any StopFlag
        report(event)
        if event.kind in FINAL or (event.kind == "step" and event.step % attention_every == 0):
            report(example.snapshot(model, event.step))
    return model.cpu().eval()


@dataclass(frozen=True)
class FixedExample:
    """The example whose attention the page shows forming: its ids and labels, traced at any step."""

    src: torch.Tensor | None  # (1, S) dates' source; None for a GPT
    inputs: torch.Tensor  # (1, T) the GPT's input, or the decoder's (teacher-forced: <s> and the answer)
    question: str
    key_tokens: tuple[str, ...]
    query_tokens: tuple[str, ...]
    pad_id: int | None

    def snapshot(self, model: nn.Module, step: int) -> AttentionSnapshot:
        """Trace the example (trace() switches to eval and back): self-attention, or dates' cross-attention."""
        if self.src is None:
            record = trace(model, self.inputs)
            weights = torch.stack([layer.self_attention.weights[0] for layer in record.decoder.layers])  # (L, H, T, T)
            return AttentionSnapshot(step, weights.clone(), tuple(self.inputs[0].tolist()), self.key_tokens,
                                     self.question)
        record = trace(model, src=self.src, tgt=self.inputs, src_pad_id=self.pad_id, tgt_pad_id=self.pad_id)
        weights = torch.stack([layer.cross_attention.weights[0] for layer in record.decoder.layers])  # (L, H, Tq, S)
        return AttentionSnapshot(step, weights.clone(), tuple(self.src[0].tolist()), self.key_tokens, self.question,
                                 self.query_tokens, "cross")


def fixed_example(task, tokenizer) -> FixedExample:
    """The same example for every run of a task (seeded by EXAMPLE_SEED)."""
    generator = torch.Generator().manual_seed(EXAMPLE_SEED)
    if task.model_kind == "gpt":
        inputs = task.make_sequences(1, generator)[:, :-1]  # (1, T)
        tokens = tuple(tokenizer.id_to_token(i) for i in inputs[0].tolist())
        return FixedExample(None, inputs, " ".join(tokens[: task.n]), tokens, tokens, None)
    batch = task.make_batch(task.sample_examples(1, generator), tokenizer)
    source, answer = batch.src, batch.tgt_in  # (1, S), (1, Tq)
    keys = tuple(tokenizer.id_to_token(i) for i in source[0].tolist())
    queries = tuple(tokenizer.id_to_token(i) for i in answer[0].tolist())
    return FixedExample(source, answer, "".join(keys), keys, queries, tokenizer.pad_id)


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
