"""Command line: train a model on a task and save it as a checkpoint.

    python -m model.train --task reversal --steps 400 --out checkpoints/my-reversal
    python -m model.train --task reversal --n-kv-heads 1 --out checkpoints/reversal-mqa
    python -m model.train --task reversal --pos-encoding rope --attention mla --kv-latent-dim 32 --out my-mla

Settings start from the task's recipe (model/recipes.py); flags override them.
Bad settings are refused before anything starts.

Data-parallel on several processes (model/distributed.py; gloo on CPU, NCCL on GPU):

    torchrun --nproc_per_node 2 -m model.train --task reversal --batch-size 32 --out checkpoints/my-reversal

There --batch-size is per process: the global batch is batch size x processes (64 here),
and the run takes the same steps as one process with --batch-size 64. Only rank 0
prints and writes the checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from . import distributed
from .checkpoint import CheckpointError, save_checkpoint
from .config import ConfigError
from .recipes import RECIPES, build_config, model_from_config
from .tasks import task_from_dict
from .training import TrainConfig, check_run, train, training_precision

MODEL_FLAGS = ("d_model", "n_heads", "n_kv_heads", "n_layers", "d_ff", "dropout", "pos_encoding", "norm", "norm_position", "max_len",
               "rope_base", "attention", "kv_latent_dim", "mla_rope_dim")
TRAIN_FLAGS = ("steps", "batch_size", "lr", "warmup_steps", "eval_every", "seed", "device", "precision", "compile")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(RECIPES))
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--force", action="store_true", help="replace an existing checkpoint at --out")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="dtype of the saved weights")
    for name in ("d_model", "n_heads", "n_kv_heads", "n_layers", "d_ff", "max_len", "steps", "batch_size", "warmup_steps", "eval_every", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--pos-encoding", choices=["sinusoidal", "learned", "rope", "none"])
    parser.add_argument("--rope-base", type=float, help="RoPE: pair i turns by base^(-2i/d_head) per position")
    parser.add_argument("--attention", choices=["standard", "mla"], help="mla: multi-head latent attention")
    parser.add_argument("--kv-latent-dim", type=int, help="MLA: the cached latent's width per token")
    parser.add_argument("--mla-rope-dim", type=int, help="MLA with RoPE: the rotary key's width (default d_head / 2)")
    parser.add_argument("--norm", choices=["layernorm", "rmsnorm"])
    parser.add_argument("--norm-position", choices=["pre", "post"])
    parser.add_argument("--device", help="cpu, cuda, or auto (default)")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                        help="autocast dtype of training steps (auto: the faster one measured, see model/training.py)")
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model for training")
    parser.add_argument("--no-causal", action="store_true", help="GPT only: remove the causal mask (to show leakage)")
    parser.add_argument("--n", type=int, help="reversal: symbols to reverse")
    parser.add_argument("--vocab", type=int, help="reversal: number of symbols")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace):
    """(task description, model settings, TrainConfig) from the recipe plus the flags given."""
    recipe = RECIPES[args.task]
    task_desc = dict(recipe.task)
    for key in ("n", "vocab"):
        if getattr(args, key) is not None:
            if args.task != "reversal":
                raise ConfigError(f"--{key} applies to the reversal task only.")
            task_desc[key] = getattr(args, key)
    model_settings = dict(recipe.model)
    model_settings.update({k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None})
    if args.no_causal:
        model_settings["causal"] = False
    train_config = replace(recipe.train, **{k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None})
    return task_desc, model_settings, train_config


def progress_line(event) -> str:
    width = 30
    filled = int(width * event.fraction_done)
    eta = event.elapsed / max(event.fraction_done, 1e-9) - event.elapsed
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {event.step}/{event.total_steps} "
        f"loss {event.loss:.4f} acc {event.accuracy:.3f} {event.tokens_per_s:,.0f} tok/s "
        f"{event.elapsed:.0f}s elapsed, {eta:.0f}s left "
    )


def headline(metrics: dict) -> str:
    """The few numbers worth a line (lists such as accuracy by position are left out)."""
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def where(train_config: TrainConfig, world: distributed.World) -> str:
    """'on cpu', or 'on cpu x 2 processes (global batch 64 = 32 per process)' under torchrun."""
    place = f"on {train_config.resolved_device()}"
    if world.is_distributed:
        global_batch = train_config.batch_size * world.world_size
        per_rank = train_config.batch_size
        place += f" x {world.world_size} processes (global batch {global_batch} = {per_rank} per process)"
    return place


def checkpoint_meta(task, argv: list[str], train_config: TrainConfig, event, world: distributed.World) -> dict:
    """What a checkpoint records about its run, the exact command included."""
    launcher = "python -m model.train"
    if world.is_distributed:
        launcher = f"torchrun --nproc_per_node {world.world_size} -m model.train"
    meta = {
        "task": task.describe(),
        "command": f"{launcher} {shlex.join(argv)}",
        "train": train_config.to_dict(),
        "steps": event.step,
        "final_loss": event.loss,
        "final_accuracy": event.accuracy,
        "train_seconds": round(event.elapsed, 1),
        "metrics": {k: v for k, v in event.metrics.items() if not isinstance(v, (list, dict))},
    }
    if world.is_distributed:
        meta.update(world_size=world.world_size, global_batch_size=train_config.batch_size * world.world_size)
    return meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    world = distributed.World()
    try:
        task_desc, model_settings, train_config = settings_from(args)
        world = distributed.start(train_config.resolved_device())  # a world of one unless under torchrun
        out = Path(args.out)
        if out.exists() and not args.force:
            raise CheckpointError(f"{out} already exists; pass --force to replace it.")
        task = task_from_dict(task_desc)
        tokenizer = task.make_tokenizer()
        model_config = build_config(task, tokenizer, model_settings)
        check_run(model_config, train_config, task.required_max_len)  # before allocating anything
        model = model_from_config(model_config, seed=train_config.seed)
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as error:
        if world.is_main:
            print(f"error: {error}", file=sys.stderr)
        distributed.finish()
        return 2
    try:
        events = train(model, task, train_config)
        if not world.is_main:  # the other ranks train in silence
            for event in events:
                pass
            return 0
        precision = training_precision(train_config, model_config.d_model, task.required_max_len,
                                       distributed.rank_device(train_config.resolved_device(), world))
        compiled = ", compiled" if train_config.compile else ""
        print(f"{args.task}: {model.num_parameters:,} parameters {where(train_config, world)}, {precision}{compiled}",
              file=sys.stderr)
        interval = 0.25 if sys.stderr.isatty() else 10.0  # redraw often on a terminal, rarely in a log
        last_print = -interval
        for event in events:
            if event.elapsed - last_print >= interval or event.kind != "step":
                print(progress_line(event), end="" if sys.stderr.isatty() else "\n", file=sys.stderr, flush=True)
                last_print = event.elapsed
            if event.kind == "eval":
                print(f"\n  eval at step {event.step}: {headline(event.metrics)}", file=sys.stderr)
        print(file=sys.stderr)
        meta = checkpoint_meta(task, argv, train_config, event, world)
        meta["precision"] = precision
        save_checkpoint(out, model.cpu(), tokenizer, meta, dtype=DTYPES[args.dtype], overwrite=args.force)
        print(f"final evaluation: {headline(event.metrics)}")
        print(f"saved {out}")
        return 0
    finally:
        distributed.finish()


if __name__ == "__main__":
    sys.exit(main())
