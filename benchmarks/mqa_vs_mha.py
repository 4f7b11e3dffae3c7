"""Decoding speed and KV-cache bytes of MHA, GQA, MQA and MLA models of the same size.

    python -m benchmarks.mqa_vs_mha            # demo and memory-bound setups (about a minute, ~1.5 GB of RAM)
    python -m benchmarks.mqa_vs_mha --quick    # a smoke run
    python -m benchmarks.mqa_vs_mha --threads 1 --clock cpu

Here the peer of each variant is multi-head attention (n_kv_heads = n_heads) of the same
d_model, heads and layers; only n_kv_heads changes.

- demo: the app's reversal model shape (d_model 128, 4 heads, 2 layers), `GPT.generate`
  of 8 tokens after an 8-token prompt at batch 1, as the app runs it.
- memory-bound: batch 32 x 2048 cached tokens x 8 layers (d_model 256, 8 heads), where
  every decode step reads the whole cache (1 GiB for MHA). The cache is filled with
  random keys and values (speed does not depend on their values; prefilling 65k tokens
  through the model would take minutes here), then `decode_steps` tokens are decoded
  through `model(next_id, cache=cache)`, rewinding the cache between repeats.

Targets (issue 7): MQA >= 0.95x MHA in the demo, >= 2.5x in the memory-bound setup, and
cache bytes exactly H / H_kv times smaller.

MLA rows (issue 16): multi-head latent attention with RoPE, the same d_model, heads and layers,
caching a latent of `mla[0]` and a rotary key of `mla[1]` numbers per token and layer, decoded
on the absorbed path (attention over the cached latents, never decompressed). Its cache bytes
are checked against L * B * T * (C + R) * 4 exactly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import format_bytes, interleaved_times, median, parser, print_table, setup, spread
from model import GPT, GPTConfig
from model.kv_cache import ModelCache


@dataclass(frozen=True)
class Setup:
    name: str
    d_model: int
    n_heads: int
    n_layers: int
    kv_heads: tuple[int, ...]
    batch: int
    context: int  # tokens in the cache (memory-bound) or in the prompt (demo)
    new_tokens: int
    repeats: int
    target: float  # MQA speed vs MHA
    prefilled: bool  # True: random cache of `context` tokens; False: generate() from a prompt
    mla: tuple[int, int] | None = None  # (latent C, rotary key R): an MLA row beside the others


DEMO = Setup(
    "demo (reversal app)", 128, 4, 2, (4, 2, 1), batch=1, context=8, new_tokens=8, repeats=100, target=0.95, prefilled=False,
    mla=(32, 32),  # checkpoints/reversal-mla's latent and rotary key
)
MEMORY_BOUND = Setup(
    "memory-bound", 256, 8, 8, (8, 2, 1), batch=32, context=2048, new_tokens=4, repeats=7, target=2.5, prefilled=True,
    mla=(64, 16),
)
QUICK = (
    Setup("demo (--quick)", 32, 4, 2, (4, 2, 1), 1, context=8, new_tokens=8, repeats=3, target=0.95, prefilled=False,
          mla=(16, 4)),
    Setup("memory-bound (--quick)", 64, 4, 2, (4, 2, 1), 2, context=128, new_tokens=2, repeats=3, target=2.5, prefilled=True,
          mla=(16, 4)),
)
MLA = 0  # the key of the MLA run among the K/V head counts
VOCAB = 10


def kind(n_heads: int, n_kv_heads: int) -> str:
    return "MHA" if n_kv_heads == n_heads else "MQA" if n_kv_heads == 1 else "GQA"


def random_cache(model: GPT, s: Setup) -> ModelCache:
    """A cache holding `s.context` tokens of random keys and values, room for the new ones."""
    c = model.config
    cache = model.new_cache(capacity=s.context + s.new_tokens)
    generator = torch.Generator().manual_seed(0)
    for layer in cache.self_attention:
        if c.attention == "mla":  # rows [c_KV ; k_R] (B, 1, T, C + R); nothing in the second tensor
            first, second = (s.batch, 1, s.context, c.kv_latent_dim + c.mla_rope_dim), (s.batch, 1, s.context, 0)
        else:
            first = second = (s.batch, c.n_kv_heads, s.context, c.d_head)  # (B, Hkv, T, Dh)
        layer.append(torch.randn(first, generator=generator), torch.randn(second, generator=generator))
    return cache


def decode_run(model: GPT, s: Setup):
    """A closure decoding s.new_tokens tokens, and the cache bytes of s.context tokens."""
    ids = torch.randint(0, VOCAB, (s.batch, s.context), generator=torch.Generator().manual_seed(1))
    if not s.prefilled:
        probe = model.new_cache()
        model(ids, cache=probe)
        return (lambda: model.generate(ids, s.new_tokens)), probe.self_attention_nbytes
    cache = random_cache(model, s)
    nbytes = cache.self_attention_nbytes
    next_ids = ids[:, -1:]  # (B, 1)

    def run() -> None:
        for layer in cache.self_attention:
            layer.length = s.context  # rewind: forget the tokens the previous repeat decoded
        with torch.inference_mode():
            for _ in range(s.new_tokens):
                model(next_ids, cache=cache)

    return run, nbytes


def config_of(s: Setup, n_kv: int) -> GPTConfig:
    if n_kv == MLA:
        latent, rope = s.mla
        return GPTConfig(VOCAB, s.context + s.new_tokens, s.d_model, s.n_heads, s.n_layers, pos_encoding="rope",
                         attention="mla", kv_latent_dim=latent, mla_rope_dim=rope)
    return GPTConfig(VOCAB, s.context + s.new_tokens, s.d_model, s.n_heads, s.n_layers, n_kv_heads=n_kv)


def exact_bytes(s: Setup, n_kv: int, nbytes: int, mha_bytes: int) -> bool:
    """MHA/GQA/MQA: H / H_kv times smaller than MHA; MLA: L * B * T * (C + R) * 4."""
    if n_kv == MLA:
        return nbytes == s.n_layers * s.batch * s.context * sum(s.mla) * 4
    return mha_bytes == nbytes * (s.n_heads // n_kv)


def measure(s: Setup, clock) -> tuple[list[list[object]], float]:
    runs, nbytes = {}, {}
    for n_kv in s.kv_heads + ((MLA,) if s.mla else ()):
        torch.manual_seed(0)
        runs[n_kv], nbytes[n_kv] = decode_run(GPT(config_of(s, n_kv)).eval(), s)
    times = interleaved_times(runs, s.repeats, warmup=1, clock=clock)
    mha = s.n_heads
    rows = []
    for n_kv, t in times.items():
        bytes_ratio = nbytes[mha] / nbytes[n_kv]
        exact = "yes" if exact_bytes(s, n_kv, nbytes[n_kv], nbytes[mha]) else "NO"
        name = f"MLA (C={s.mla[0]}, R={s.mla[1]})" if n_kv == MLA else f"{kind(mha, n_kv)} (H_kv={n_kv})"
        rows.append([
            s.name, name, format_bytes(nbytes[n_kv]), f"{bytes_ratio:.3g}x", exact,
            f"{s.batch * s.new_tokens / median(t):,.0f}", spread(t), f"{median(times[mha]) / median(t):.2f}x",
        ])
    return rows, median(times[mha]) / median(times[1])


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    clock = setup(args, "MHA vs GQA vs MQA decoding (ours, same d_model/heads/layers)")
    rows, verdicts = [], []
    for s in QUICK if args.quick else (DEMO, MEMORY_BOUND):
        print(f"  measuring {s}", file=sys.stderr, flush=True)
        setup_rows, mqa_speed = measure(s, clock)
        rows += setup_rows
        verdict = "n/a (--quick)" if args.quick else "met" if mqa_speed >= s.target else "MISSED"
        verdicts.append([s.name, f"{mqa_speed:.2f}x", f">= {s.target}x", verdict])
    print_table(
        "decode tokens/s and KV-cache bytes (the context's tokens, all layers)",
        ["setup", "attention", "cache", "smaller than MHA", "exact bytes", "tokens/s", "spread", "speed vs MHA"],
        rows,
    )
    print_table("MQA vs MHA targets", ["setup", "MQA speed vs MHA", "target", "verdict"], verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
