"""Command line: evaluate a checkpoint on fresh data from its task and print the metrics.

    python -m model.evaluate checkpoints/reversal-mha [--sequences 2000] [--seed 1234]
"""

from __future__ import annotations

import argparse
import sys

from .checkpoint import CheckpointError, load_checkpoint


def format_metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return " ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_metric(v)}" for k, v in value.items())
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sequences", type=int, default=2000, help="fresh sequences to evaluate on")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the fresh data (not the training seed)")
    args = parser.parse_args(argv)
    try:
        loaded = load_checkpoint(args.checkpoint)
        task = loaded.task
        if task is None:
            raise CheckpointError(f"{args.checkpoint} has no task in its metadata, so there is nothing to evaluate.")
        metrics = task.evaluate(loaded.model, num_sequences=args.sequences, seed=args.seed)
    except (CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{loaded.name}: {task.describe()['name']}, {loaded.model.num_parameters:,} parameters")
    for key, value in metrics.items():
        print(f"  {key:<24} {format_metric(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
