"""Training throughput: tokens/s of one training step, our GPT vs Hugging Face GPT-2 of the same shape.

    python -m benchmarks.train_throughput            # the full table (a few minutes on 2 CPU cores)
    python -m benchmarks.train_throughput --quick    # a smoke run
    python -m benchmarks.train_throughput --threads 1 --clock cpu --written-out --bf16

Both models compute the same function (GPT-2 gets a copy of our initial weights) and
take the step our training loop takes (model/training.py): forward, token cross-entropy,
zero_grad, backward, gradient clipping, AdamW from `make_optimizer`. Both see the same
batches. Steps alternate between the two (see benchmarks/common.py); the table shows
medians and the ratio of the medians. Target (issue 7): ours >= 1.10x on CPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from benchmarks.common import (
    GPT2Logits, interleaved_times, matched_pair, median, parser, print_table, setup, spread, with_written_out_norms,
)
from model import GPTConfig
from model.tasks import token_loss
from model.training import TrainConfig, make_optimizer

TARGET = 1.10


@dataclass(frozen=True)
class Shape:
    name: str
    vocab: int
    context: int  # tokens per sequence in a step (the model's max_len)
    d_model: int
    n_heads: int
    n_layers: int
    batch: int
    repeats: int

    def config(self) -> GPTConfig:
        return GPTConfig(self.vocab, self.context, self.d_model, self.n_heads, self.n_layers)


SHAPES = (
    Shape("reversal (app default)", vocab=10, context=15, d_model=128, n_heads=4, n_layers=2, batch=64, repeats=30),
    Shape("shakespeare recipe", vocab=5000, context=64, d_model=128, n_heads=4, n_layers=3, batch=32, repeats=15),
    Shape("wider, longer context", vocab=256, context=256, d_model=256, n_heads=8, n_layers=4, batch=8, repeats=10),
)
QUICK = (Shape("tiny (--quick)", vocab=10, context=15, d_model=32, n_heads=4, n_layers=2, batch=8, repeats=3),)


def training_step(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]):
    """One step of our training loop on the next batch of a fixed list, as a closure."""
    config = TrainConfig()
    optimizer = make_optimizer(model, config)
    model.train()
    state = {"i": 0}

    def step() -> None:
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss, _ = token_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()

    return step


def in_bf16(run):
    """The same step under bf16 autocast (TrainConfig.precision="bfloat16")."""
    def wrapped():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            run()

    return wrapped


def measure(shape: Shape, clock, written_out: bool, bf16: bool) -> list[list[object]]:
    ours, peer = matched_pair(shape.config())
    generator = torch.Generator().manual_seed(0)
    sequences = [torch.randint(0, shape.vocab, (shape.batch, shape.context + 1), generator=generator) for _ in range(4)]
    batches = [(ids[:, :-1], ids[:, 1:]) for ids in sequences]  # (B, T) inputs and next-token targets
    runs = {"ours": training_step(ours, batches), "GPT-2": training_step(GPT2Logits(peer), batches)}
    if written_out:
        twin, _ = matched_pair(shape.config())
        runs["ours, written-out LayerNorm"] = with_written_out_norms(training_step(twin, batches))
    if bf16:
        twin, peer_twin = matched_pair(shape.config())
        runs["ours, bf16 autocast"] = in_bf16(training_step(twin, batches))
        runs["GPT-2, bf16 autocast"] = in_bf16(training_step(GPT2Logits(peer_twin), batches))
    times = interleaved_times(runs, shape.repeats, warmup=2, clock=clock)
    tokens = shape.batch * shape.context
    peer_time = median(times["GPT-2"])
    return [
        [shape.name, name, f"{median(t) * 1e3:.1f}", spread(t), f"{tokens / median(t):,.0f}",
         f"{peer_time / median(t):.2f}x"]
        for name, t in times.items()
    ]


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--bf16", action="store_true", help="also time both models under bf16 autocast")
    args = cli.parse_args(argv)
    clock = setup(args, "Training throughput: ours vs transformers.GPT2LMHeadModel (sdpa)")
    rows = []
    for shape in QUICK if args.quick else SHAPES:
        print(f"  measuring {shape.name}: {shape}", file=sys.stderr, flush=True)
        rows += measure(shape, clock, args.written_out, args.bf16)
    print_table(
        f"training step, same batches and optimiser (target: ours >= {TARGET:.2f}x GPT-2)",
        ["shape", "model", "ms/step", "spread", "tokens/s", "speed vs GPT-2"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
