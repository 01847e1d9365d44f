"""Data-parallel training in several processes started by torchrun (torch.distributed).

    torchrun --standalone --nproc_per_node N gaussian_point_train.py --train_config x.yaml

starts N processes (ranks). Every rank holds the whole scene and its Adam state, and trains on its
share of each batch of `batch-size` views (the global batch, split evenly); `World` is what the
trainer needs of the process group. Kept identical on every rank, so that densification, pruning,
opacity resets and MCMC relocation decide the same everywhere:

- the random choices: every rank seeds the same generator and draws the whole global batch (views,
  backgrounds) and every densification sample; it then renders its share (`World.share`);
- the gradients: each view's loss is weighted 1 / global batch and the gradients are summed over
  the ranks before Adam (`World.sum_gradients`), so the update is that of one process training
  the global batch (up to the order of the float sums);
- the densification statistics: each step's sums (maxima for radii) are reduced over the ranks
  before they are accumulated (`World.sum_`, `World.max_`);
- with `optimizer: sparse-adam`, the Gaussians that Adam updates: those visible in a render of the
  step in any process (`World.union`);
- what the trainer decides from measured values (the divergence check on the loss, Ctrl-C) is
  reduced first.

Validation is sharded: rank r renders val views r, r + N, ... and the scores are gathered
(`evaluation.evaluate_across_ranks`), equal to one process's evaluation.

Devices: one per rank. Taichi 1.7 runs its CUDA kernels on the first visible device, whatever torch
uses (it has no device index), so `joined_world` narrows `CUDA_VISIBLE_DEVICES` to the GPU of
`LOCAL_RANK` (the LOCAL_RANK-th of those listed, or GPU LOCAL_RANK) before CUDA starts; torch
then sees it as cuda:0 too. The collectives run on NCCL with CUDA, on gloo on the CPU. On the CPU,
Taichi's thread pool is cut to cores / processes on the machine (`TI_CPU_MAX_NUM_THREADS`, unless
set), as torchrun does for torch (OMP_NUM_THREADS=1).

Failure: a rank that raises leaves its process at once with its error (`taichi_3dgs.train_cli`)
instead of waiting for the others in a collective; torchrun then stops the other ranks.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

from taichi_3dgs.backend import ARCH_ENV_VAR, torch_device

T = TypeVar("T")

# Set by torchrun in each process it starts (torch.distributed.run).
RANK_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
TAICHI_THREADS_VAR = "TI_CPU_MAX_NUM_THREADS"  # ti.init's cpu_max_num_threads, read from the environment


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; one process when size is 1.

    Attributes:
        rank: 0..size-1; rank 0 writes every output.
        size: number of processes.
        device: the torch device of this process's tensors (and of the collectives).
    """

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True in the process that writes the outputs and prints (rank 0)."""
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's items: rank r takes items r, r + size, r + 2 size, ..."""
        return list(items[self.rank::self.size])

    def sum_(self, *tensors: torch.Tensor) -> None:
        """Replace each tensor by its sum over the processes, in place (no-op in one process)."""
        if self.size > 1:
            for tensor in tensors:
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    def max_(self, tensor: torch.Tensor) -> None:
        """Replace `tensor` by its elementwise maximum over the processes, in place."""
        if self.size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)

    def union(self, mask: torch.Tensor) -> torch.Tensor:
        """The elementwise OR of the bool tensor `mask` over the processes (`mask` itself in one
        process; every process must call it with the same shape)."""
        if self.size == 1:
            return mask
        flags = mask.to(torch.uint8)  # collectives reduce numbers, not bools
        self.max_(flags)
        return flags.bool()

    def sum_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Sum the `.grad` of every parameter over the processes (one all-reduce of all of them;
        a missing gradient counts as zeros). No-op in one process."""
        if self.size == 1:
            return
        params = list(parameters)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        for param, chunk in zip(params, flat.split([p.numel() for p in params])):
            param.grad = chunk.view_as(param).to(param.dtype)

    def any(self, flag: bool) -> bool:
        """True when `flag` is true in any process (every process must call it)."""
        if self.size == 1:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        self.max_(value)
        return bool(value.item())

    def all_gather(self, obj: Any) -> list[Any]:
        """`obj` of every process, by rank (picklable objects)."""
        if self.size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered

    def gather_to_main(self, obj: Any) -> Optional[list[Any]]:
        """`obj` of every process, by rank, in the main process; None in the others."""
        if self.size == 1:
            return [obj]
        gathered: Optional[list[Any]] = [None] * self.size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.size > 1:
            dist.barrier()


SINGLE_PROCESS = World()


@dataclass(frozen=True)
class LaunchEnvironment:
    """What torchrun tells a process: its rank, the number of processes, and the same on its machine."""

    rank: int
    size: int
    local_rank: int
    local_size: int

    @staticmethod
    def read() -> Optional["LaunchEnvironment"]:
        """The variables torchrun sets, or None when this process was not started by a launcher
        of several processes (WORLD_SIZE unset or 1).

        Raises:
            ValueError: WORLD_SIZE > 1 but a variable is missing or not a number in range.
        """
        if os.environ.get("WORLD_SIZE", "1").strip() == "1":
            return None
        values = {}
        for name in RANK_VARS:
            text = os.environ.get(name)
            try:
                values[name] = int(text)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"environment variable {name} is {text!r}; expected an integer, as torchrun sets "
                                 "it (start several training processes with torchrun --nproc_per_node N ...)") from None
        env = LaunchEnvironment(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"])
        if not (0 <= env.rank < env.size and 0 <= env.local_rank < env.local_size <= env.size):
            raise ValueError(f"environment variables RANK={env.rank}, WORLD_SIZE={env.size}, LOCAL_RANK="
                             f"{env.local_rank}, LOCAL_WORLD_SIZE={env.local_size} are inconsistent")
        return env


def rank_label() -> str:
    """'rank R/N' when this process is one of N > 1 started by torchrun, else ''; for messages
    (reads the environment only, never fails)."""
    try:
        env = LaunchEnvironment.read()
    except ValueError:
        return ""
    return "" if env is None else f"rank {env.rank}/{env.size}"


def _select_local_device(env: LaunchEnvironment) -> None:
    """Give this process its own GPU and its share of the CPU threads, before CUDA or Taichi start.

    Raises:
        ValueError: CUDA_VISIBLE_DEVICES lists fewer GPUs than processes on this machine.
        RuntimeError: CUDA already started in this process, so the GPU can no longer be chosen.
    """
    if os.environ.get(ARCH_ENV_VAR, "").lower() in ("", "cuda"):
        listed = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = None if listed is None else [d.strip() for d in listed.split(",") if d.strip()]
        if devices is None:
            chosen = str(env.local_rank)
        elif not devices:  # no GPU on purpose: the CPU
            chosen = listed
        elif env.local_rank < len(devices):
            chosen = devices[env.local_rank]
        else:
            raise ValueError(f"LOCAL_RANK is {env.local_rank} but CUDA_VISIBLE_DEVICES={listed!r} lists "
                             f"{len(devices)} GPU(s); start at most that many processes per machine")
        if chosen != listed and torch.cuda.is_initialized():
            raise RuntimeError("CUDA started before the process group was joined; the GPU of LOCAL_RANK "
                               f"{env.local_rank} can no longer be chosen")
        os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    cores = os.cpu_count() or 1
    os.environ.setdefault(TAICHI_THREADS_VAR, str(max(1, cores // env.local_size)))


@contextlib.contextmanager
def joined_world() -> Iterator[World]:
    """This process's `World`: under torchrun (WORLD_SIZE > 1) it joins the process group, else it
    is `SINGLE_PROCESS`. Enter it before anything starts Taichi or CUDA.

    Under torchrun it picks this rank's device (module docstring), starts Taichi, and joins the
    group on NCCL (CUDA) or gloo (CPU) at torchrun's MASTER_ADDR:MASTER_PORT; the group is left on
    a normal exit. On an exception it is not left: waiting for the other ranks could hang, and the
    caller ends the process (`taichi_3dgs.train_cli`).

    Raises:
        ValueError, RuntimeError: from `LaunchEnvironment.read` and the device choice.
    """
    env = LaunchEnvironment.read()
    if env is None:
        yield SINGLE_PROCESS
        return
    _select_local_device(env)
    device = torch_device()
    if device.type == "cuda":
        torch.cuda.set_device(0)  # the one GPU this process sees
        device = torch.device("cuda", 0)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=env.rank, world_size=env.size)
    yield World(env.rank, env.size, device)
    dist.destroy_process_group()
