"""Running under torchrun: the process group, this process's rank, and the few collectives the
suite needs. Without torchrun everything here is the single-process case (rank 0 of 1), so
library code calls these helpers unconditionally.

torchrun (PyTorch's launcher) starts one process per GPU or CPU slot and tells each its place
through the environment: RANK (global), LOCAL_RANK (on this node), WORLD_SIZE, MASTER_ADDR and
MASTER_PORT. `init(device)` joins the group those name: NCCL for CUDA devices, gloo for CPU.
Rank 0 ("main") is the one that prints and writes files; the others compute their share.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist

from suite.errors import SuiteError

T = TypeVar("T")
TIMEOUT = timedelta(minutes=30)  # a collective waiting longer than this fails (torch's default)


def is_launched() -> bool:
    """True when this process was started by torchrun (or anything setting its variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank; 0 in a single process."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes in the group; 1 in a single process."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the process that prints and writes files; False on torchrun's other
    workers also before `init` and after `shutdown` (then it reads torchrun's RANK)."""
    return rank() == 0 if is_initialized() else int(os.environ.get("RANK", "0")) == 0


def local_rank() -> int:
    """This process's rank on its node (the GPU it uses); 0 when not launched."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def backend_for(device: torch.device | str) -> str:
    """The collective backend for a device: NCCL on CUDA, gloo on CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init(device: torch.device | str = "cpu") -> bool:
    """Join torchrun's process group (once); return whether this run is distributed.

    Not launched by torchrun: does nothing and returns False. On CUDA the process first
    selects its device, so NCCL and object collectives use the right GPU.
    """
    if is_initialized():
        return world_size() > 1
    if not is_launched():
        return False
    device = torch.device(device)
    if not dist.is_available():
        raise SuiteError("this PyTorch build has no torch.distributed; run without torchrun")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend_for(device), timeout=TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SuiteError(f"cannot join the torchrun process group: {first}") from None
    return world_size() > 1


def shutdown() -> None:
    """Leave the process group (if joined), once every process is done with it: rank 0 hosts the
    rendezvous store, and a rank that tears the group down while another still talks to it
    makes that one's communication threads die with `std::terminate` (SIGABRT, seen once in
    a few runs of the two-process tests on a busy machine)."""
    if is_initialized():
        if world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def session(device: torch.device | str = "cpu") -> Iterator[bool]:
    """`init(device)` for the block (yields whether distributed); leaves the group it joined."""
    joined = not is_initialized() and init(device)
    try:
        yield world_size() > 1
    finally:
        if joined:
            shutdown()


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes, in place; returns it (unchanged in a single process).
    NCCL reduces CUDA tensors only, so there a CPU tensor goes through this process's GPU."""
    if world_size() > 1:
        if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
            buf = tensor.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            tensor.copy_(buf)
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sync_from_main(tensors: Sequence[torch.Tensor]) -> None:
    """Overwrite `tensors` on every process with rank 0's values, in place."""
    if world_size() > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def shard(items: Sequence[T], rank_: int | None = None, world: int | None = None) -> Sequence[T]:
    """This process's contiguous share of `items`: rank r of W gets block r of W nearly equal
    blocks (the first len % W blocks one longer). Concatenating the blocks in rank order gives
    `items` back, so results gathered in rank order are in the original order."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    size, extra = divmod(len(items), w)
    start = r * size + min(r, extra)
    return items[start:start + size + (r < extra)]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's `obj`, in rank order, on every process. Pickled: for results, not for
    tensors that move every step."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_from_main(fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 only and return its result on every process.

    A SuiteError raised by `fn` is raised on every process, so a bad input seen by rank 0
    (a checkpoint that does not fit, a folder that cannot be written) stops all of them
    with the same message instead of leaving the others waiting.
    """
    if world_size() == 1:
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except SuiteError as exc:
            box[0] = ("error", str(exc))
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise SuiteError(value)
    return value
