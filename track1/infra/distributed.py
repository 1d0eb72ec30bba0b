"""torchrun / single-process helpers: one code path for both.

Under ``torchrun`` the environment names RANK, WORLD_SIZE and LOCAL_RANK; without it
the run is a world of one and nothing here touches ``torch.distributed``.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from track1.infra.errors import UserError


class DeviceError(UserError, RuntimeError):
    """A device that cannot be had (CUDA absent, more ranks than GPUs)."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` (the GPU of LOCAL_RANK) | ``cuda:N`` (as given)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available")
    if name not in ("auto", "cuda"):
        try:
            return torch.device(name)
        except RuntimeError as e:
            raise DeviceError(f"bad device {name!r}: {e}") from None
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise DeviceError(f"LOCAL_RANK {local_rank} needs GPU {local_rank}, but only {visible} "
                           f"CUDA device(s) are visible: start at most {visible} process(es) per "
                           f"node (torchrun --nproc_per_node), or pass --device cpu")
    return torch.device("cuda", local_rank)


def setup(device: str = "auto", backend: str | None = None,
          timeout: datetime.timedelta | None = None) -> DistInfo:
    """Initialise the process group when launched by torchrun (default NCCL on GPU, gloo on
    CPU; evaluation passes gloo with a long ``timeout``: it only meets at barriers, and its
    ranks finish at different times)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        kwargs = {} if timeout is None else {"timeout": timeout}
        dist.init_process_group(backend=backend or ("nccl" if dev.type == "cuda" else "gloo"),
                                **kwargs)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def no_sync_factory(model: torch.nn.Module):
    """``model.no_sync`` for DDP, a null context otherwise."""
    return getattr(model, "no_sync", contextlib.nullcontext)
