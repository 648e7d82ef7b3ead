"""Data-parallel training on torch.distributed, as launched by torchrun.

    torchrun --nproc-per-node 2 -m cnnlab train ...          (one machine)
    torchrun --nnodes 2 --node-rank R --master-addr HOST --master-port 29500 \\
             --nproc-per-node 4 -m cnnlab train ...           (several)

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; each process trains on its own share of
every epoch, DistributedDataParallel averages the gradients, the epoch's sums are added
across processes, and only rank 0 writes files. Gloo on CPUs, NCCL on GPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init_world(device_type: str) -> World:
    """Join the process group torchrun set up; a plain `cnnlab train` is a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    world = World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    """Each process on a GPU takes the one torchrun numbered for it."""
    return torch.device("cuda", world.local_rank) if world.active and device.type == "cuda" else device


def wrap(model: nn.Module, world: World, sync_bn: bool) -> nn.Module:
    if not world.active:
        return model
    on_gpu = next(model.parameters()).is_cuda
    if sync_bn and not on_gpu:
        raise UserError("--sync-bn needs GPUs: PyTorch's SyncBatchNorm runs only on CUDA.")
    if sync_bn:  # batch statistics over the global batch, not each process's share
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [world.local_rank] if on_gpu else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def sum_tally(world: World):
    """A `reduce` for engine.fit: add every process's epoch sums; None for one process."""
    if not world.active:
        return None

    def reduce(tally) -> None:
        names = sorted(tally.sums)  # the same order on every process
        parts = [tally.loss_sum, tally.seen, ~tally.finite, *(tally.sums[n] for n in names)]
        total = torch.cat([p.double().flatten() for p in parts])  # one all_reduce for all
        dist.all_reduce(total)
        pieces = total.split([p.numel() for p in parts])
        tally.loss_sum, tally.seen = pieces[0][0].float(), pieces[1][0].long()
        tally.finite = pieces[2][0] == 0
        # each sum back in its own shape and number type (counts stay whole numbers)
        tally.sums = {n: piece.view_as(tally.sums[n]).to(tally.sums[n].dtype)
                      for n, piece in zip(names, pieces[3:])}
    return reduce


def broadcast(world: World, value):
    """Rank 0's value on every rank (for example the run folder it created)."""
    if not world.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
