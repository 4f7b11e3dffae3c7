"""Greedy decoding speed at batch 1: our `GPT.generate` vs `GPT2LMHeadModel.generate`, with and without cache.

    python -m benchmarks.decode            # lengths 64, 256, 512 (a few minutes on 2 CPU cores)
    python -m benchmarks.decode --quick    # a smoke run
    python -m benchmarks.decode --threads 1 --clock cpu --written-out

The model has the Shakespeare recipe's shape (vocab 5000, d_model 128, 4 heads, 3 layers)
with a 512-token context; GPT-2 gets a copy of our weights, so both compute the same
function and must produce the same tokens (checked and shown). Each run decodes from a
16-token prompt to the total length; tokens/s counts the generated tokens, prefill
included. Targets (issue 7): our cached decoding >= 1.5x GPT-2's cached decoding, and our
cache speed-up (cached / uncached tokens/s at 512) at least GPT-2's.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (
    interleaved_times, matched_pair, median, parser, print_table, setup, spread, with_written_out_norms,
)
from model import GPTConfig

PROMPT = 16
TARGET_CACHED = 1.5


def runs_for(ours, peer, prompt: torch.Tensor, new: int, use_cache: bool, written_out: bool) -> dict:
    mask = torch.ones_like(prompt)
    runs = {
        "ours": lambda: ours.generate(prompt, new, temperature=0.0, use_cache=use_cache),
        "GPT-2": lambda: peer.generate(
            prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=use_cache
        ),
    }
    if written_out:
        runs["ours, written-out LayerNorm"] = with_written_out_norms(runs["ours"])
    return runs


def check_same_tokens(runs: dict) -> str:
    outputs = [run() for run in runs.values()]
    return "yes" if all(torch.equal(outputs[0], o) for o in outputs[1:]) else "NO"


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    clock = setup(args, "Greedy decoding at batch 1: ours vs transformers.GPT2LMHeadModel.generate")
    vocab, lengths, repeats = (64, (32, 48), 2) if args.quick else (5000, (64, 256, 512), 5)
    d_model, n_layers = (32, 2) if args.quick else (128, 3)
    ours, peer = matched_pair(GPTConfig(vocab, max(lengths), d_model, 4, n_layers))
    ours.eval(), peer.eval()
    prompt = torch.randint(0, vocab, (1, PROMPT), generator=torch.Generator().manual_seed(1))
    rows, speed = [], {}
    for total in lengths:
        new = total - PROMPT
        for use_cache in (True, False):
            print(f"  measuring length {total}, cache {use_cache}", file=sys.stderr, flush=True)
            runs = runs_for(ours, peer, prompt, new, use_cache, args.written_out)
            same = check_same_tokens(runs)
            times = interleaved_times(runs, repeats if use_cache else max(2, repeats - 2), warmup=1, clock=clock)
            for name, t in times.items():
                speed[name, total, use_cache] = new / median(t)
                ratio = median(times["GPT-2"]) / median(t)
                label = "cached" if use_cache else "uncached"
                rows.append([total, label, name, f"{new / median(t):,.0f}", spread(t), f"{ratio:.2f}x", same])
    print_table(
        f"greedy tokens/s, batch 1, {PROMPT}-token prompt (target: ours cached >= {TARGET_CACHED}x GPT-2 cached)",
        ["length", "cache", "model", "tokens/s", "spread", "speed vs GPT-2", "same tokens"],
        rows,
    )
    longest = max(lengths)
    names = ["ours", "GPT-2"] + (["ours, written-out LayerNorm"] if args.written_out else [])
    summary = [
        [name, f"{speed[name, longest, True] / speed[name, longest, False]:.1f}x"] for name in names
    ]
    print_table(f"cache speed-up at length {longest} (cached / uncached tokens/s; target: ours >= GPT-2)",
                ["model", "cache speed-up"], summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
