"""Data-parallel training over torch.distributed (NCCL on GPU, gloo on CPU), launched by torchrun.

Modules are replicated: parameters and buffers are broadcast from rank 0 at start, each rank
computes gradients on its share of the batch, and :func:`sync_grads` all-reduces (averages) the
flattened gradients before each optimiser step. This is what DistributedDataParallel does, done by
hand because the regularisation passes call ``torch.autograd.grad(create_graph=True)`` (which DDP's
reducer does not support) and the same modules take part in several passes per step.
"""
import datetime
import os
import pickle
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, TypeVar

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def from_env() -> DistInfo:
    """Rank info from torchrun's environment (single process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group when running under torchrun with more than one process."""
    if info.world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size,
                                timeout=datetime.timedelta(minutes=30),
                                device_id=device if device.type == "cuda" else None)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if active():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_object(obj):
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_object(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` in a single process."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def hosts_missing(path: str, wait_s: float = 30.0) -> List[str]:
    """The machines (host names) of the ranks that do not see ``path``, a file rank 0 wrote before a
    barrier, within ``wait_s`` seconds (a network filesystem may show a new file to other machines a
    little later); [] when every rank sees it, and always in a single process. Several machines must
    share the run folder (docs/multinode.md): this finds one that does not at the start of a run."""
    if not active():
        return []
    deadline = time.monotonic() + wait_s
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.5)
    seen = gather_object((socket.gethostname(), os.path.exists(path)))
    return sorted({host for host, visible in seen if not visible})


T = TypeVar("T")


def on_rank0(fn: Callable[[], T]) -> T:
    """``fn()`` run by global rank 0 alone, its result given to every rank; the exception it raises is
    raised on every rank instead. For what the whole job must decide once: which checkpoint
    ``--resume latest`` means (nodes may list a shared folder differently, or see a checkpoint that
    rank 0 is still writing). Single process: just ``fn()``."""
    if not active():
        return fn()
    result = error = None
    if dist.get_rank() == 0:
        try:
            result = fn()
        except Exception as e:   # given to every rank, raised there and here
            error = e
        try:
            pickle.dumps((result, error))
        except Exception as e:   # never leave the other ranks waiting for an object rank 0 cannot send
            result, error = None, RuntimeError(f"rank 0 cannot send its result to the other ranks: {e}")
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def fail_together(fn: Callable[[], T]) -> T:
    """``fn()`` on every rank; when it raises on any rank, every rank raises: that rank its own
    exception, the others a copy of the first failing rank's, its message prefixed with the host and
    rank. So a check that fails on one machine only (its copy of the data is missing) stops every
    process with the message, instead of leaving the others waiting for it at their next collective
    operation. The copy has the exception's class when the class takes one message (the errors of
    :mod:`ganops_models.errors` do), else it is a RuntimeError. Single process: just ``fn()``."""
    if not active():
        return fn()
    result = error = None
    try:
        result = fn()
    except Exception as e:   # shared with every rank below, then raised
        error = e
    failures = [f for f in gather_object(None if error is None else _portable(error)) if f is not None]
    if error is not None:
        raise error
    if failures:
        raise failures[0]
    return result


def _portable(error: Exception) -> Exception:
    """``error`` for the other ranks: its class and message, the message prefixed with where it happened."""
    where = f"{socket.gethostname()} (rank {dist.get_rank()})"
    try:
        copy = type(error)(f"{where}: {error}")
        pickle.loads(pickle.dumps(copy))
        return copy
    except Exception:   # a class that takes other arguments, or does not pickle
        return RuntimeError(f"{where}: {type(error).__name__}: {error}")


def sync_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Average gradients over ranks (one flattened all-reduce), then nan_to_num them in place:
    NaN -> 0, +-inf -> +-1e5, as StyleGAN2-ADA does."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    if active():
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= dist.get_world_size()
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n
    for p in params:
        torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


def barrier() -> None:
    if active():
        dist.barrier()
