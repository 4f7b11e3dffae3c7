"""Data-parallel training over several processes (`torchrun`), kept to a few small functions.

    torchrun --nproc_per_node 2 -m model.train --task reversal --out checkpoints/my-reversal

torchrun starts N copies of the program and tells each its rank through environment
variables. Every process (rank) holds the whole model; DistributedDataParallel averages
the gradients over the ranks during backward, so after each optimiser step every copy has
the same weights. Processes talk through gloo on the CPU and NCCL on GPUs.

Data: every rank draws the same *global* batch from the same seeded generator and keeps
its own rows (rank r of N keeps rows r*b .. r*b+b-1 of N*b). The shards are disjoint, and
N processes with `batch_size` b take the same steps as one process with `batch_size` N*b,
up to float rounding in the gradient average. So: global batch = per-rank batch x world size.
(Tasks with padding score a different number of tokens per rank; averaging per-rank mean
gradients then weights tokens slightly differently from one big batch.)

Only rank 0 evaluates, prints and writes the checkpoint; the others just train.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among world_size processes, its GPU on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: torch.device) -> World:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA); a single World when not under torchrun."""
    if not launched_by_torchrun():
        return World()
    if not dist.is_initialized():
        # Before init: DDP imports torch.distributed.nn, whose default arguments would otherwise
        # capture the world group and keep it (and its threads) alive until exit; see finish()
        import torch.distributed.nn
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return current()


def current() -> World:
    """This process's World: rank and size of the initialised process group, else a world of one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def finish() -> None:
    """Leave the process group, if one was joined, and stop its gloo worker threads before returning.

    This relies on how PyTorch frees a process group (checked on torch 2.13.0);
    tests/test_distributed.py fails when finish() leaves a worker thread behind.

    A worker thread can still hold a finished collective's tensors after the collective returns;
    freeing a tensor made in Python takes the GIL, and a thread that asks for the GIL while the
    interpreter shuts down is killed inside C++, which aborts the process (SIGABRT, "terminate
    called without an active exception"). destroy_process_group only forgets the group; its
    threads stop when the last reference goes. So: free DDP's cycles (its Reducer must not drop
    the last reference: it does so holding the GIL, and the join would wait on a thread that
    wants it), then drop ours, whose destructor joins the threads with the GIL released.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    group = dist.group.WORLD
    dist.destroy_process_group()
    gc.collect()  # DistributedDataParallel sits in reference cycles
    del group  # the last reference: joins the worker threads


def rank_device(device: torch.device, world: World) -> torch.device:
    """On GPUs each rank on a machine takes its own: cuda:LOCAL_RANK."""
    if device.type == "cuda" and world.is_distributed:
        return torch.device("cuda", world.local_rank)
    return device


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module to run training steps through: DDP over the model when distributed, else the model."""
    if not world.is_distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch, world: World):
    """This rank's rows of a global batch (a dataclass of tensors, batch dimension first)."""
    if not world.is_distributed:
        return batch
    size = len(batch) // world.world_size
    rows = slice(world.rank * size, (world.rank + 1) * size)
    return type(batch)(**{f.name: getattr(batch, f.name)[rows] for f in fields(batch)})


def global_metrics(metrics: dict[str, float], world: World, device: torch.device) -> dict[str, float]:
    """A step's loss and accuracy over the global batch: per-rank values weighted by scored tokens."""
    if not world.is_distributed:
        return metrics
    tokens = metrics.get("tokens", 1.0)
    totals = torch.tensor([metrics["loss"] * tokens, metrics["accuracy"] * tokens, tokens], dtype=torch.float64)
    totals = totals.to(device)
    dist.all_reduce(totals)  # sums over ranks
    loss_sum, correct, tokens = totals.tolist()
    return {**metrics, "loss": loss_sum / tokens, "accuracy": correct / tokens, "tokens": tokens}


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when it is True on one (ranks must agree to stop, or the others wait forever)."""
    if not world.is_distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
