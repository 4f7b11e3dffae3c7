"""Steps and seconds to 99% second-half accuracy on reversal: our GPT vs GPT-2, same init, loop and data.

    python -m benchmarks.train_reversal            # the app's default reversal settings, 3 seeds
    python -m benchmarks.train_reversal --quick    # a smoke run (tiny model, a few steps)
    python -m benchmarks.train_reversal --threads 1 --clock cpu --written-out

Both models have the app's default shape (model/recipes.py: d_model 128, 4 heads, 2 layers,
n = 8 symbols, vocab 10) and start from the same weights: our initialisation is GPT-2's
(N(0, 0.02); residual projections N(0, 0.02 / sqrt(2 n_layers)); zero biases; unit norms),
and GPT-2 gets a copy of our initial weights, so at step 0 they are the same function.
Both are trained by our own loop, `model.training.train`, with the recipe's TrainConfig
(AdamW from `make_optimizer`, warmup and cosine decay, clipping, batch 64, 400 steps) and
the same batches (the loop's data generator is seeded by TrainConfig.seed). The two runs
advance one step at a time in turn, so load from elsewhere hits both alike.

After every step the loop evaluates on 500 fresh sequences; "steps" is the first step
at >= 99% second-half accuracy, "seconds" the time spent in training steps up to it
(evaluation excluded). Target (issues 4 and 7): no more steps than GPT-2, and less time.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    GPT2Logits, check_same_function, copy_weights_to_gpt2, written_out_norms, gpt2_peer, parser, print_table, setup,
)
from model.recipes import RECIPES, build_config, model_from_config
from model.tasks import task_from_dict
from model.training import train

THRESHOLD = 0.99
EVAL_EVERY = 1


@dataclass
class Progress:
    """One model's run so far."""

    events: object  # the train() generator
    patch: object = nullcontext  # a context to run its steps in (the written-out LayerNorm)
    train_seconds: float = 0.0
    tokens: float = 0.0
    reached_at: int | None = None  # step of the first evaluation at >= THRESHOLD
    accuracy: float = 0.0  # second-half accuracy at the last evaluation
    finished: bool = False


def advance(progress: Progress, clock) -> None:
    """Run one more event of the loop; book a step's time as training time."""
    start = clock()
    try:
        with progress.patch():
            event = next(progress.events)
    except StopIteration:
        progress.finished = True
        return
    if event.kind == "step":
        progress.train_seconds += clock() - start
        progress.tokens = event.tokens_per_s * event.elapsed  # the loop's count of scored tokens
    elif "second_half_accuracy" in event.metrics:
        progress.accuracy = event.metrics["second_half_accuracy"]
        if progress.accuracy >= THRESHOLD and progress.reached_at is None:
            progress.reached_at = event.step
            progress.events.close()
            progress.finished = True
    if event.kind in ("done", "stopped"):
        progress.finished = True


def race(seed: int, quick: bool, clock, written_out: bool) -> dict[str, Progress]:
    """Train ours and GPT-2 from the same weights on the same batches, a step each in turn."""
    recipe = RECIPES["reversal"]
    task_desc = {"name": "reversal", "n": 4, "vocab": 6} if quick else recipe.task
    settings = {**recipe.model, "d_model": 32} if quick else recipe.model
    task = task_from_dict(task_desc)
    config = build_config(task, task.make_tokenizer(), settings)
    train_config = replace(
        recipe.train, seed=seed, eval_every=EVAL_EVERY, eval_sequences=100 if quick else 500,
        steps=20 if quick else recipe.train.steps, device="cpu",
    )
    ours = model_from_config(config, seed=seed)
    peer = gpt2_peer(config)
    copy_weights_to_gpt2(ours, peer)
    check_same_function(ours, peer)
    runs = {
        "ours": Progress(train(ours, task, train_config)),
        "GPT-2": Progress(train(GPT2Logits(peer), task, train_config)),
    }
    if written_out:
        twin = model_from_config(config, seed=seed)  # the same initial weights again
        runs["ours, written-out LayerNorm"] = Progress(train(twin, task, train_config), written_out_norms)
    while not all(p.finished for p in runs.values()):
        for progress in runs.values():
            if not progress.finished:
                advance(progress, clock)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    clock = setup(args, f"Reversal to {THRESHOLD:.0%} second-half accuracy: ours vs GPT-2 (same init, loop, data)")
    rows, verdicts = [], []
    for seed in (0,) if args.quick else (0, 1, 2):
        print(f"  training seed {seed}", file=sys.stderr, flush=True)
        runs = race(seed, args.quick, clock, args.written_out)
        for name, p in runs.items():
            steps = p.reached_at if p.reached_at is not None else "not reached"
            tokens_per_s = f"{p.tokens / p.train_seconds:,.0f}"
            rows.append([seed, name, steps, f"{p.train_seconds:.2f}", tokens_per_s, f"{p.accuracy:.4f}"])
        ours, peer = runs["ours"], runs["GPT-2"]
        if ours.reached_at is not None and peer.reached_at is not None:
            fewer_steps = ours.reached_at <= peer.reached_at
            faster = ours.train_seconds < peer.train_seconds
            verdict = "met" if fewer_steps and faster else "MISSED"
            speed = f"{peer.train_seconds / ours.train_seconds:.2f}x"
            verdicts.append([seed, f"{ours.reached_at} vs {peer.reached_at}", speed, verdict])
        else:
            verdicts.append([seed, "not reached", "n/a", "n/a"])
    print_table(
        f"steps and training seconds to {THRESHOLD:.0%} second-half accuracy (evaluated every {EVAL_EVERY} steps)",
        ["seed", "model", "steps", "train seconds", "tokens/s", "second-half accuracy"],
        rows,
    )
    print_table(
        "target: no more steps than GPT-2, and less time",
        ["seed", "steps (ours vs GPT-2)", "time: ours faster by", "verdict"],
        verdicts,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
