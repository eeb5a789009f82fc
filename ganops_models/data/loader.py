"""Infinite, shuffled, seeded, rank-split batches from a dataset, fed by worker processes.

Each epoch is a fresh permutation of the dataset (seeded by ``seed`` and the epoch number); it is cut
to a multiple of ``world_size`` and rank r takes positions r, r + world_size, ..., so ranks see
disjoint samples within an epoch and the same number of them. Batches are always full.
"""
import multiprocessing
import sys
from typing import Iterator, Optional, Tuple

import torch


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices for one rank (see the module docstring)."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True):
        _check_int(size, "size", 1)
        _check_int(world_size, "world_size", 1)
        _check_int(rank, "rank", 0)
        _check_int(seed, "seed", 0)
        if rank >= world_size:
            raise ValueError(f"rank must be < world_size ({world_size}), got {rank}")
        if size < world_size:
            raise ValueError(f"the dataset has {size} samples, fewer than world_size={world_size}")
        self.size, self.rank, self.world_size, self.seed, self.shuffle = size, rank, world_size, seed, shuffle

    def __iter__(self) -> Iterator[int]:
        usable = self.size - self.size % self.world_size
        epoch = 0
        while True:
            if self.shuffle:
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                order = torch.randperm(self.size, generator=gen)
            else:
                order = torch.arange(self.size)
            yield from order[self.rank:usable:self.world_size].tolist()
            epoch += 1


def _check_int(value, what: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")


def worker_start_method() -> Optional[str]:
    """How the loader's worker processes start: ``'fork'`` on Linux (a copy of this process: nothing is
    re-imported or pickled, so a worker is ready at once; the workers touch no CUDA and set one thread
    each), else ``'forkserver'`` where the platform has it (macOS: fork is unsafe there), else None
    (the platform's default: Windows spawns). Named explicitly because the default follows the
    process: a process started by ``torch.multiprocessing.spawn`` (``--gpus N``) would spawn its
    workers, re-importing torch in each, and Python 3.14 changes Linux's default to forkserver."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else None


def make_loader(dataset, batch_size: int, rank: int = 0, world_size: int = 1, workers: int = 2, seed: int = 0,
                device="cpu", prefetch: int = 2) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Endless iterator of (images, labels) batches for this rank, already on ``device``.

    images: uint8 [batch_size, 3, H, W] (convert with :func:`images_to_float`); labels: float32
    [batch_size, label_dim]. ``batch_size`` is the per-rank batch. ``workers`` decode in separate
    processes (0: in this process; started as :func:`worker_start_method` says); host memory is
    pinned and copies are non-blocking on CUDA.
    """
    _check_int(batch_size, "batch_size", 1)
    _check_int(workers, "workers", 0)
    _check_int(prefetch, "prefetch", 1)
    device = torch.device(device)
    sampler = InfiniteSampler(len(dataset), rank=rank, world_size=world_size, seed=seed)
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, pin_memory=cuda, drop_last=True,
        persistent_workers=workers > 0, prefetch_factor=prefetch if workers > 0 else None,
        multiprocessing_context=worker_start_method() if workers > 0 else None)

    def batches():
        for images, labels in loader:
            yield images.to(device, non_blocking=cuda), labels.to(device, non_blocking=cuda)

    return batches()


def images_to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images in [0, 255] -> ``dtype`` in [-1, 1] (x / 127.5 - 1)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    return images.to(dtype) / 127.5 - 1
