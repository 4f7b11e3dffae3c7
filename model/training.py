"""One training loop for the command line and the app.

The loop knows nothing about tasks or UI: it takes a model, a task (anything with
`sample_batch`, `loss` and `evaluate`, see model/tasks) and a TrainConfig, and
yields TrainEvent records. The CLI prints them; the app's background job stores
them for its charts. A `threading.Event` stops the loop between steps.

Optimiser: AdamW, linear warmup then cosine decay to `min_lr_ratio * lr`,
gradient clipping by global norm. Deterministic under `seed` on the CPU.

Precision and compilation (TrainConfig.precision, TrainConfig.compile) follow what
benchmarks/RESULTS.md measured: bf16 autocast roughly halves a step on a CPU with native
bf16 matmuls once the matrices are large (d_model 256, 256-token context), and is slower
on the app's small reversal model, so "auto" picks it only above a work threshold (and
always on a CUDA GPU that supports bf16). torch.compile is off by default: on the CPU its
first step compiles for about 40 s, more than a run of a few hundred steps can win back.

A run may also end when it has learned: with `stop_metric` set, the first evaluation whose
metrics[stop_metric] reaches `stop_at` ends the run with a "learned" event (that evaluation's metrics;
evaluate often, on few sequences, to notice within a few steps). The loop still knows nothing of the
task: the metric is a key of whatever the task's `evaluate` returns.

Under torchrun (see model/distributed.py) the same loop trains with DistributedDataParallel:
`batch_size` is per process, each process trains on its own shard of a global batch of
batch_size x world_size, the reported loss, accuracy and tokens/s are the global batch's,
and only rank 0 evaluates.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from . import distributed
from .config import ConfigError, GPTConfig, TransformerConfig
from .device import default_device
from .gpt import GPT
from .transformer import Transformer

MAX_PARAMETERS = 50_000_000  # beyond this a run is refused: this is a teaching tool on shared CPUs
MAX_MEMORY_BYTES = 6 * 1024**3  # estimated training memory a run may take
# batch x tokens x d_model from which bf16 autocast was faster than float32 on this project's CPU:
# reversal (64 x 15 x 128 = 122,880) was 1.16x slower, the Shakespeare recipe (32 x 64 x 128) 1.2x faster.
BF16_CPU_MIN_WORK = 1 << 18
Precision = Literal["auto", "float32", "bfloat16"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the model's shape lives in its own config)."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 100  # 0 evaluates only at the end
    eval_sequences: int = 500
    seed: int = 0
    device: str = "auto"  # "auto" is CUDA when available, else the CPU
    precision: Precision = "auto"  # autocast dtype of the forward pass; see training_precision
    compile: bool = False  # torch.compile the model for the training steps
    stop_metric: str = ""  # end once an evaluation's metrics[stop_metric] >= stop_at ("" trains every step)
    stop_at: float = 1.0

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, f"steps must be at least 1, got {self.steps}."),
            (self.steps <= 1_000_000, f"steps must be at most 1,000,000, got {self.steps}."),
            (1 <= self.batch_size <= 4096, f"batch_size must be between 1 and 4096, got {self.batch_size}."),
            (0 < self.lr <= 1.0, f"lr must be in (0, 1], got {self.lr}."),
            (0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}."),
            (self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}."),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}."),
            (self.grad_clip > 0, f"grad_clip must be positive, got {self.grad_clip}."),
            (self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}."),
            (self.eval_sequences >= 1, f"eval_sequences must be at least 1, got {self.eval_sequences}."),
            (not self.stop_metric or self.eval_every >= 1,
             f"stopping at {self.stop_metric} needs evaluations during the run (eval_every >= 1)."),
            (self.precision in ("auto", "float32", "bfloat16"),
             f"precision must be auto, float32 or bfloat16, got {self.precision!r}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolved_device(self) -> torch.device:
        return default_device() if self.device == "auto" else torch.device(self.device)


@dataclass(frozen=True)
class TrainEvent:
    """One report from the loop: after a step, after an evaluation, or at the end.

    The last event is "done" (every step ran), "learned" (an evaluation reached the config's
    stop_at) or "stopped" (asked to stop); each carries an evaluation in `metrics`.
    """

    kind: Literal["step", "eval", "learned", "done", "stopped"]
    step: int  # steps completed
    total_steps: int
    loss: float  # of the last step's batch
    accuracy: float  # of the last step's batch (scored tokens)
    lr: float
    tokens_per_s: float  # scored tokens per second, averaged over the run so far
    elapsed: float  # seconds since the start
    metrics: dict = field(default_factory=dict)  # the task's evaluation ("eval", "done", "stopped")

    @property
    def fraction_done(self) -> float:
        return self.step / self.total_steps


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup over warmup_steps, then cosine decay to min_lr_ratio * lr at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX), through oneDNN."""
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def training_precision(config: TrainConfig, d_model: int, seq_len: int, device: torch.device) -> str:
    """The precision a run trains in: config.precision, or for "auto" the faster one measured.

    "auto" is bfloat16 on a CUDA GPU that supports it, and on a CPU with native bf16 matmuls
    when batch x seq_len x d_model >= BF16_CPU_MIN_WORK; float32 otherwise.
    """
    if config.precision != "auto":
        return config.precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu" and config.batch_size * seq_len * d_model >= BF16_CPU_MIN_WORK and cpu_has_fast_bf16():
        return "bfloat16"
    return "float32"


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms' gains)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


def estimate_training_bytes(model_config: GPTConfig | TransformerConfig, batch_size: int, seq_len: int) -> int:
    """Rough float32 memory of a training step: weights, grads, Adam moments, activations."""
    vocab = getattr(model_config, "vocab_size", None) or model_config.tgt_vocab_size
    c = model_config
    per_layer = 4 * c.d_model * c.d_model + 2 * c.d_model * c.d_ff
    parameters = c.n_layers * per_layer * (2 if isinstance(c, TransformerConfig) else 1) + vocab * c.d_model
    activations = batch_size * seq_len * c.n_layers * (12 * c.d_model + 2 * c.d_ff + 2 * c.n_heads * seq_len)
    activations += batch_size * seq_len * vocab * 2  # logits and their gradient
    return 4 * (4 * parameters + activations)


def check_run(model_config: GPTConfig | TransformerConfig, train_config: TrainConfig, required_len: int) -> None:
    """Refuse, before anything starts, runs that cannot work or would swamp the machine."""
    if required_len > model_config.max_len:
        raise ConfigError(
            f"the task's sequences are {required_len} tokens long but max_len is {model_config.max_len}; "
            f"raise max_len or shorten the sequences."
        )
    model_cls = GPT if isinstance(model_config, GPTConfig) else Transformer
    with torch.device("meta"):  # counts parameters without allocating them
        parameters = sum(p.numel() for p in model_cls(model_config).parameters())
    if parameters > MAX_PARAMETERS:
        raise ConfigError(f"the model has {parameters:,} parameters; the limit here is {MAX_PARAMETERS:,}.")
    needed = estimate_training_bytes(model_config, train_config.batch_size, required_len)
    if needed > MAX_MEMORY_BYTES:
        raise ConfigError(
            f"training would need about {needed / 1024**3:.1f} GiB of memory (limit {MAX_MEMORY_BYTES / 1024**3:.0f}); "
            f"use a smaller batch, model or sequence."
        )


def _evaluate(task, model: nn.Module, config: TrainConfig, device: torch.device) -> dict:
    metrics = task.evaluate(model, num_sequences=config.eval_sequences, seed=config.seed + 1, device=str(device))
    model.train()
    return metrics


def reached(metrics: dict, config: TrainConfig) -> bool:
    """Whether an evaluation meets the config's stop rule (never without one)."""
    value = metrics.get(config.stop_metric) if config.stop_metric else None
    return isinstance(value, (int, float)) and value >= config.stop_at


def train(
    model: nn.Module,
    task,
    config: TrainConfig,
    stop: threading.Event | None = None,
) -> Iterator[TrainEvent]:
    """Train `model` on `task`, yielding an event after every step and evaluation.

    The last event is "done" (all steps ran), "learned" (an evaluation met config.stop_metric >=
    config.stop_at; that evaluation is the final one) or "stopped" (stop was set); each carries a
    final evaluation. The model keeps what it learned either way. Under torchrun the
    evaluations run on rank 0 only; other ranks' events carry empty metrics.
    """
    world = distributed.current()
    device = distributed.rank_device(config.resolved_device(), world)
    model.to(device).train()
    step_model = distributed.wrap(model, world, device)  # DDP when distributed, else the model itself
    if config.compile:
        step_model = torch.compile(step_model)
    d_model = getattr(getattr(model, "config", None), "d_model", 0)  # 0 for a foreign model: float32 on CPU
    precision = training_precision(config, d_model, task.required_max_len, device)
    # bf16 autocast runs matmuls in bf16 and keeps weights, norms, softmax and the loss in float32
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)  # the data order; CPU-side for determinism
    start, tokens, step = time.perf_counter(), 0.0, 0
    loss_value = accuracy = lr = 0.0
    while step < config.steps:
        if distributed.any_rank(stop is not None and stop.is_set(), world, device):
            break
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        global_batch = task.sample_batch(config.batch_size * world.world_size, generator)
        batch = distributed.shard(global_batch, world).to(device)
        with autocast:
            loss, batch_metrics = task.loss(step_model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        batch_metrics = distributed.global_metrics(batch_metrics, world, device)
        tokens += batch_metrics.get("tokens", 0.0)
        loss_value, accuracy = batch_metrics["loss"], batch_metrics["accuracy"]
        elapsed = time.perf_counter() - start
        yield TrainEvent("step", step, config.steps, loss_value, accuracy, lr, tokens / elapsed, elapsed)
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            metrics = _evaluate(task, model, config, device) if world.is_main else {}
            learned = distributed.any_rank(reached(metrics, config), world, device)
            elapsed = time.perf_counter() - start
            yield TrainEvent("learned" if learned else "eval", step, config.steps, loss_value, accuracy, lr,
                             tokens / elapsed, elapsed, metrics)
            if learned:
                model.eval()
                return
    metrics = _evaluate(task, model, config, device) if world.is_main else {}
    model.eval()
    elapsed = time.perf_counter() - start
    kind = "stopped" if step < config.steps else "learned" if reached(metrics, config) else "done"
    yield TrainEvent(kind, step, config.steps, loss_value, accuracy, lr, tokens / max(elapsed, 1e-9), elapsed, metrics)
