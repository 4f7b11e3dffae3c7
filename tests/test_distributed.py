"""Data-parallel training: 2 CPU processes under torchrun equal 1 process with the same global batch.

Each rank trains on its own half of a global batch drawn from the shared seeded generator
(model/distributed.py), and DDP averages the gradients, so 2 x batch 8 takes the same
steps as 1 x batch 16 up to float rounding in the gradient average. Stated tolerance:
the last step's training loss and the final evaluation loss agree to 1e-4 (observed: equal
to every printed digit).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--task", "reversal", "--d-model", "32", "--n-layers", "1",
    "--steps", "40", "--warmup-steps", "5", "--lr", "0.01", "--eval-every", "0",
]
TOLERANCE = 1e-4


def run(command: list[str], out: Path) -> tuple[dict, str]:
    """One launch, into a folder that does not exist yet; its config.json's meta and its stdout."""
    assert not out.exists()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command + ["--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "config.json").read_text())["meta"], done.stdout


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two, two_stdout = run(torchrun + ["-m", "model.train", *TINY, "--batch-size", "8"], tmp_path / "two")
    one, _ = run([sys.executable, "-m", "model.train", *TINY, "--batch-size", "16"], tmp_path / "one")

    assert two["world_size"] == 2 and two["global_batch_size"] == 16 and two["steps"] == one["steps"] == 40
    assert two["command"].startswith("torchrun --nproc_per_node 2 -m model.train")
    assert two_stdout.count("saved ") == 1  # only rank 0 prints and writes the checkpoint
    assert one["metrics"]["loss"] < 2.27  # it learned (chance is ln 10 = 2.30), so equality means something
    assert abs(two["final_loss"] - one["final_loss"]) <= TOLERANCE
    assert abs(two["metrics"]["loss"] - one["metrics"]["loss"]) <= TOLERANCE


def test_shard_splits_a_global_batch_into_disjoint_rank_slices():
    import torch

    from model.distributed import World, shard
    from model.tasks import LMBatch

    batch = LMBatch(x=torch.arange(12).view(6, 2), y=torch.arange(12).view(6, 2) + 100)
    parts = [shard(batch, World(rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [2, 2, 2]
    assert torch.equal(torch.cat([p.x for p in parts]), batch.x)
    assert torch.equal(torch.cat([p.y for p in parts]), batch.y)
    assert shard(batch, World()) is batch  # a world of one trains on the whole batch


THREAD_PROBE = """
import os, torch
from model import distributed

def native_threads():
    return len(os.listdir("/proc/self/task"))

torch.set_num_threads(1)
before = native_threads()
world = distributed.start(torch.device("cpu"))
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
model(torch.randn(3, 4)).sum().backward()
total = torch.ones(1)
torch.distributed.all_reduce(total)
del model
distributed.finish()
print(f"rank {world.rank}: {int(total)} ranks, threads before {before} after {native_threads()}", flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_finish_stops_the_process_groups_worker_threads(tmp_path):
    """finish() leaves no gloo thread running, so no rank can abort in them at exit (PyTorch-internal behaviour)."""
    probe = tmp_path / "probe.py"
    probe.write_text(THREAD_PROBE, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(probe)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = re.findall(r"rank (\d): (\d+) ranks, threads before (\d+) after (\d+)", done.stdout)
    assert sorted(rank for rank, *_ in lines) == ["0", "1"], done.stdout
    for rank, ranks, before, after in lines:
        assert ranks == "2" and int(after) <= int(before), f"rank {rank}: {before} threads before, {after} after finish()"
