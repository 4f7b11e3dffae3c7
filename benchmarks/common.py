"""Helpers every benchmark shares: interleaved timing, the Hugging Face GPT-2 peer, tables, the machine.

Timing on a shared, noisy machine: each benchmark runs ours and the peer in the
same process, after warmup, interleaved (A B, B A, A B, ...), and reports the
median of each and the ratio of the medians. A burst of load from another
process then lands on both sides alike instead of on whichever ran second.

The peer is `transformers.GPT2LMHeadModel` built from a `GPT2Config` of the same
shape as our GPT (vocab, layers, d_model, heads, context; exact GELU; dropout 0;
`attn_implementation="sdpa"`). Our GPT's initialisation is GPT-2's (N(0, 0.02),
residual projections scaled by 1/sqrt(2 n_layers), zero biases, unit norms), and
`copy_weights_to_gpt2` makes the two models the same function, which
`check_same_function` verifies before anything is timed.

transformers is imported here and in the benchmark scripts only, never in `model/`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from model import GPT, GPTConfig, LayerNorm


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark has."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run: tiny sizes, few repeats")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice, one per core)")
    p.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a shared machine",
    )
    p.add_argument(
        "--written-out", action="store_true",
        help="also time ours with LayerNorm running its written-out formula instead of F.layer_norm",
    )
    return p


def setup(args: argparse.Namespace, title: str) -> Callable[[], float]:
    """Apply --threads, print the header; returns the clock to time with."""
    if args.threads:
        torch.set_num_threads(args.threads)
    print_header(title)
    print(f"clock: {args.clock} time" + (" (process CPU time, all threads)" if args.clock == "cpu" else ""))
    return time.process_time if args.clock == "cpu" else time.perf_counter


# --------------------------------------------------------------------------- timing


def interleaved_times(
    runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Seconds per call of each run, `repeats` timings each, interleaved with alternating order.

    Every run is first called `warmup` times untimed (allocator, thread pools, lazy inits).
    `clock` is wall time by default; `time.process_time` counts only this process's CPU time.
    """
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            start = clock()
            runs[name]()
            times[name].append(clock() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """The interquartile range relative to the median, e.g. '±7%': how noisy a timing was."""
    if len(values) < 4:
        return "n/a"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"±{50 * (q3 - q1) / statistics.median(values):.0f}%"


# --------------------------------------------------------------------------- tables and the machine


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pipes), right-aligned numbers, so it pastes into RESULTS.md unchanged."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(3, len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_NUMBER.fullmatch(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric)) + " |"
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


_NUMBER = re.compile(r"[-+±]?[\d,.]+\s?(x|%|ms|s|KiB|MiB|GiB|B)?|n/a")


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n### {title}\n")
    print(format_table(headers, rows))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> str:
    """One line: CPU, cores, threads, load, library versions, GPU: what a reader needs to weigh the numbers."""
    import transformers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"CPU: {cpu_model()}, {cores} cores usable (nproc), torch threads {torch.get_num_threads()}, "
        f"load average {load}; GPU: {gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )


def print_header(title: str) -> None:
    print(f"## {title}\n")
    print(machine_description())


# --------------------------------------------------------------------------- the GPT-2 peer


def gpt2_peer(config: GPTConfig) -> nn.Module:
    """A `transformers.GPT2LMHeadModel` of the same shape as a GPT with this config."""
    from transformers import GPT2Config, GPT2LMHeadModel

    unsupported = {
        "n_kv_heads": config.n_kv_heads != config.n_heads,
        "d_ff": config.d_ff != 4 * config.d_model,
        "norm": config.norm != "layernorm",
        "norm_position": config.norm_position != "pre",
        "activation": config.activation != "gelu",
        "pos_encoding": config.pos_encoding != "learned",
        "scale_embeddings": config.scale_embeddings,
        "tie_weights": not config.tie_weights,
        "bias": not config.bias,
    }
    if any(unsupported.values()):
        raise ValueError(f"GPT-2 has no equivalent of these settings: {[k for k, v in unsupported.items() if v]}.")
    hf_config = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.max_len, n_embd=config.d_model,
        n_layer=config.n_layers, n_head=config.n_heads, activation_function="gelu",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation="sdpa",
    )
    return GPT2LMHeadModel(hf_config)


@torch.no_grad()
def copy_weights_to_gpt2(ours: GPT, peer: nn.Module) -> None:
    """Make `peer` compute exactly our function: GPT-2's fused c_attn is our q, k, v side by side.

    GPT-2's Conv1D stores its weight as (in, out), nn.Linear as (out, in): hence the transposes.
    """
    hf = peer.transformer
    hf.wte.weight.copy_(ours.decoder.embed.token.weight)
    hf.wpe.weight.copy_(ours.decoder.embed.position.table.weight)
    for ours_layer, block in zip(ours.decoder.layers, hf.h, strict=True):
        attn, ffn = ours_layer.self_attn, ours_layer.ffn
        _copy_norm(block.ln_1, ours_layer.self_residual.norm)
        block.attn.c_attn.weight.copy_(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]).T)
        block.attn.c_attn.bias.copy_(torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]))
        _copy_linear(block.attn.c_proj, attn.out_proj)
        _copy_norm(block.ln_2, ours_layer.ffn_residual.norm)
        _copy_linear(block.mlp.c_fc, ffn.w_in)
        _copy_linear(block.mlp.c_proj, ffn.w_out)
    _copy_norm(hf.ln_f, ours.decoder.final_norm)


def _copy_linear(conv1d: nn.Module, linear: nn.Linear) -> None:
    conv1d.weight.copy_(linear.weight.T)  # (in, out) <- (out, in)
    conv1d.bias.copy_(linear.bias)


def _copy_norm(target: nn.Module, source: nn.Module) -> None:
    target.weight.copy_(source.weight)
    target.bias.copy_(source.bias)


class GPT2Logits(nn.Module):
    """GPT-2 behind our GPT's calling convention: ids (B, T) -> logits (B, T, V), no cache.

    The tasks' `loss` and `evaluate` and our training loop then drive it unchanged.
    """

    def __init__(self, peer: nn.Module):
        super().__init__()
        self.peer = peer

    def forward(self, idx: Tensor) -> Tensor:
        return self.peer(input_ids=idx, use_cache=False).logits  # (B, T, V)


@torch.no_grad()
def check_same_function(ours: GPT, peer: nn.Module, tolerance: float = 1e-4) -> float:
    """Largest |logit difference| between the two on random ids; raises above `tolerance`."""
    config = ours.config
    ids = torch.randint(0, config.vocab_size, (2, config.max_len), generator=torch.Generator().manual_seed(0))
    was_training = ours.training, peer.training
    ours.eval(), peer.eval()
    gap = float((ours(ids) - GPT2Logits(peer)(ids)).abs().max())
    ours.train(was_training[0]), peer.train(was_training[1])
    if gap > tolerance:
        raise AssertionError(f"ours and GPT-2 differ by {gap:.2e} in the logits after copying weights.")
    return gap


@contextmanager
def written_out_norms() -> Iterator[None]:
    """Inside the block our LayerNorm runs its written-out formula (mean, var, rsqrt, scale,
    shift) instead of the fused F.layer_norm it runs by default: what the fused op buys."""
    LayerNorm.written_out = True
    try:
        yield
    finally:
        LayerNorm.written_out = False


def with_written_out_norms(run: Callable[[], object]) -> Callable[[], object]:
    def wrapped():
        with written_out_norms():
            return run()

    return wrapped


def matched_pair(config: GPTConfig, seed: int = 0) -> tuple[GPT, nn.Module]:
    """Our GPT (seeded init) and a GPT-2 computing the same function."""
    torch.manual_seed(seed)
    ours = GPT(config)
    peer = gpt2_peer(config)
    copy_weights_to_gpt2(ours, peer)
    check_same_function(ours, peer)
    return ours, peer
