"""Paths through keyframes for interpolation videos.

``keys`` is ``[K, ...]`` (K keyframes of any shape; vectors are the last axis). A path has ``frames``
frames per transition: without ``loop`` K-1 transitions plus the last keyframe, ``(K-1)*frames + 1``
frames; with ``loop`` K transitions (the last goes back to the first), ``K*frames`` frames, so the video
repeats seamlessly. Frame j of transition i is at t = j / frames; every path hits its keyframes exactly
(the first frame of each transition is its keyframe, bit for bit), so the first frame is the first keyframe's picture.

* ``lerp``: a + t (b - a).
* ``slerp``: along the great circle between the directions of a and b (angle from the normalised
  vectors; the weights sin((1-t)W)/sin(W), sin(tW)/sin(W) applied to a and b, so lengths are
  interpolated too); nearly parallel vectors fall back to lerp.
* ``cubic``: Catmull-Rom spline (C1, through every keyframe; neighbours wrap with ``loop`` and are
  clamped at the ends without). NVIDIA's gen_video.py fits scipy's cubic spline through the keyframes
  tiled five times; both are smooth cubic paths through the same keyframes, but the in-between frames
  differ slightly and scipy's does not return a keyframe bit for bit.
"""
from typing import Iterator

import torch

KINDS = ("slerp", "lerp", "cubic")


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    a64, b64 = a.double(), b.double()
    cos = (a64 / a64.norm(dim=-1, keepdim=True) * b64 / b64.norm(dim=-1, keepdim=True)).sum(-1, keepdim=True)
    omega = cos.clamp(-1, 1).acos()
    so = omega.sin()
    parallel = so < 1e-6
    so = torch.where(parallel, torch.ones_like(so), so)
    wa = torch.where(parallel, torch.full_like(so, 1 - t), ((1 - t) * omega).sin() / so)
    wb = torch.where(parallel, torch.full_like(so, t), (t * omega).sin() / so)
    return (a64 * wa + b64 * wb).to(a.dtype)


def catmull_rom(p0, p1, p2, p3, t: float) -> torch.Tensor:
    """The Catmull-Rom segment from p1 (t=0) to p2 (t=1)."""
    return p1 + t * (0.5 * (p2 - p0) + t * ((p0 - 2.5 * p1 + 2 * p2 - 0.5 * p3)
                                            + t * (1.5 * (p1 - p2) + 0.5 * (p3 - p0))))


def path_length(num_keys: int, frames: int, loop: bool) -> int:
    return num_keys * frames if loop else (num_keys - 1) * frames + 1


def interpolation_path(keys: torch.Tensor, frames: int, loop: bool = False,
                       kind: str = "cubic") -> Iterator[torch.Tensor]:
    """Yield the ``path_length(len(keys), frames, loop)`` points of the path (see the module doc)."""
    if kind not in KINDS:
        raise ValueError(f"--interp must be one of {KINDS}, got {kind!r}")
    if len(keys) < 2:
        raise ValueError(f"an interpolation needs at least 2 keyframes, got {len(keys)}")
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    k = len(keys)
    at = (lambda i: keys[i % k]) if loop else (lambda i: keys[min(max(i, 0), k - 1)])
    for i in range(k if loop else k - 1):
        for j in range(frames):
            t = j / frames
            if j == 0:
                yield at(i).clone()
            elif kind == "lerp":
                yield lerp(at(i), at(i + 1), t)
            elif kind == "slerp":
                yield slerp(at(i), at(i + 1), t)
            else:
                yield catmull_rom(at(i - 1), at(i), at(i + 1), at(i + 2), t)
    if not loop:
        yield keys[-1].clone()
