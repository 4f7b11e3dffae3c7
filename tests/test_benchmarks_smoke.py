"""Each benchmark runs with --quick and prints its table. Benchmarks are not tests: no timings are checked.

They run in this process (main(argv)), so transformers is imported once for all of them.
"""

from __future__ import annotations

import importlib

import pytest

CASES = {
    "benchmarks.train_throughput": (["--quick", "--written-out", "--bf16"], "speed vs GPT-2"),
    "benchmarks.train_reversal": (["--quick", "--written-out"], "second-half accuracy"),
    "benchmarks.decode": (["--quick", "--written-out"], "cache speed-up"),
    "benchmarks.mqa_vs_mha": (["--quick"], "speed vs MHA"),
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(CASES))
def test_benchmark_quick_run_prints_a_table(module, capsys):
    argv, column = CASES[module]
    assert importlib.import_module(module).main(argv) == 0
    out = capsys.readouterr().out
    assert "CPU:" in out and "torch" in out  # the machine it ran on
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) >= 3 and column in out, out
