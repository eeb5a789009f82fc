"""The w space of style-based generators, shared by generate, video, project and style_mixing.

Written against the interface StyleGAN2 and StyleGAN3 generators share (NVIDIA's and ganops'):
``G.mapping(z, c, truncation_psi=psi) -> ws [N, num_ws, w_dim]``, ``G.mapping.w_avg [w_dim]``,
``G.synthesis(ws, noise_mode=...) -> images [N, C, H, W]`` in [-1, 1], ``G.num_ws``, ``G.w_dim``.

The picture of seed ``s`` is ``to_uint8(G.synthesis(G.mapping(seed_latents([s]), c, psi)))``: exactly what
``G(z, c, psi)`` (generate) computes, so a video that starts on a seed starts on generate's picture.
``projected_w.npz`` holds ``w``: float32 ``[N, num_ws, w_dim]`` (NVIDIA's projector format, N = 1).
"""
import math
import os
from typing import List, Optional, Tuple

import numpy as np
import torch

from ganops_models.network_loader import LoadedNetwork, seed_latents
from ganops_models.images import check_finite, to_uint8
from ganops_models.errors import NoWSpaceError
from ganops_models.files import atomic_write


def require_w_space(net: LoadedNetwork, tool: str) -> None:
    """Raise :class:`NoWSpaceError` (saying what to use instead) unless ``net`` has a w space."""
    if not net.has_w_space:
        raise NoWSpaceError(f"{tool} needs a style-based network (StyleGAN2/StyleGAN3) with a w space; "
                            f"{net.path} is a {net.kind} network, which maps z straight to images "
                            f"(no mapping network, no w). Use `python -m ganops_models.generate` for it.")


def class_labels(net: LoadedNetwork, class_idx: Optional[int], n: int) -> Optional[torch.Tensor]:
    """One-hot labels [n, c_dim] on the generator's device for a conditional network, None otherwise."""
    if net.c_dim > 0:
        if class_idx is None or not 0 <= class_idx < net.c_dim:
            raise ValueError(f"--class: this network is conditional; give a class in [0, {net.c_dim}), "
                             f"got {class_idx}")
        c = torch.zeros([n, net.c_dim], device=generator_device(net))
        c[:, class_idx] = 1
        return c
    if class_idx is not None:
        raise ValueError("--class: this network is unconditional; leave --class out")
    return None


def generator_device(net: LoadedNetwork) -> torch.device:
    return next(net.G_ema.parameters()).device


@torch.no_grad()
def seed_ws(net: LoadedNetwork, seeds: List[int], truncation_psi: float = 1.0,
            class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of NVIDIA's seed latents (see :func:`seed_latents`)."""
    z = seed_latents(seeds, net.z_dim).to(generator_device(net))
    return net.G_ema.mapping(z, class_labels(net, class_idx, len(seeds)), truncation_psi=truncation_psi)


@torch.no_grad()
def z_to_ws(net: LoadedNetwork, z: torch.Tensor, truncation_psi: float = 1.0,
            class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of latents z [N, z_dim]."""
    return net.G_ema.mapping(z.to(generator_device(net)), class_labels(net, class_idx, len(z)),
                             truncation_psi=truncation_psi)


def w_avg_ws(net: LoadedNetwork) -> torch.Tensor:
    """The average w broadcast to [1, num_ws, w_dim] (the picture of ``--trunc 0``)."""
    return net.G_ema.mapping.w_avg.detach().reshape(1, 1, -1).repeat(1, net.G_ema.num_ws, 1)


@torch.no_grad()
def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    """uint8 images [N, C, H, W] on the CPU of ws [N, num_ws, w_dim] (one ``G.synthesis`` call); NaN or
    infinite pixels raise :class:`~ganops_models.errors.NonFiniteOutputError`."""
    ws = ws.to(device=next(G.parameters()).device, dtype=torch.float32)
    return to_uint8(check_finite(G.synthesis(ws, noise_mode=noise_mode), "the generator")).cpu()


def save_projected_w(path: str, ws: torch.Tensor) -> None:
    """Write ``w`` [N, num_ws, w_dim] float32 to an .npz (NVIDIA's projected_w.npz layout), whole or absent."""
    with atomic_write(path) as f:
        np.savez(f, w=ws.detach().cpu().numpy().astype(np.float32))


def load_projected_w(path: str, net: LoadedNetwork) -> torch.Tensor:
    """Read ``w`` from a projected_w.npz and check it fits ``net``: float32 [N, num_ws, w_dim] on the CPU.
    Pickled objects are refused (``allow_pickle=False``): the file holds numbers only."""
    num_ws, w_dim = net.G_ema.num_ws, net.G_ema.w_dim
    if not os.path.isfile(path):
        raise ValueError(f"projected w file {path!r} does not exist (write one with ganops_models.project)")
    try:
        with np.load(path, allow_pickle=False) as data:
            w = data["w"] if "w" in data.files else None
    except Exception as e:  # not a zip, truncated, pickled objects, a bare .npy
        raise ValueError(f"{path!r} is not a readable .npz of numbers ({e}); expected the projected_w.npz "
                         f"that ganops_models.project writes") from None
    if w is None:
        raise ValueError(f"{path!r} has no array 'w'; expected the projected_w.npz that ganops_models.project writes")
    if w.dtype.kind != "f" or w.ndim != 3 or w.shape[1:] != (num_ws, w_dim) or w.shape[0] < 1:
        raise ValueError(f"{path!r}: w must be float [N, {num_ws}, {w_dim}] for this network, got "
                         f"{w.dtype} {list(w.shape)} (was it projected with another network?)")
    if not np.isfinite(w).all():
        raise ValueError(f"{path!r}: w holds NaN or infinite values")
    return torch.from_numpy(w.astype(np.float32))


def make_transform(translate: Tuple[float, float], rotate_deg: float) -> np.ndarray:
    """NVIDIA's gen_images.py ``make_transform``: the 3x3 image transform (rotation, then translation)."""
    s, c = math.sin(math.radians(rotate_deg)), math.cos(math.radians(rotate_deg))
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=np.float64)


def set_input_transform(G: torch.nn.Module, translate: Tuple[float, float] = (0.0, 0.0),
                        rotate_deg: float = 0.0) -> None:
    """Translate and rotate a StyleGAN3 generator's picture: ``G.synthesis.input.transform`` becomes the
    inverse of :func:`make_transform`, as NVIDIA's gen_images.py sets it. ValueError for other generators."""
    synthesis_input = getattr(getattr(G, "synthesis", None), "input", None)
    transform = getattr(synthesis_input, "transform", None)
    if not isinstance(transform, torch.Tensor):
        raise ValueError("translate/rotate: only StyleGAN3 generators have an input transform")
    inverse = np.linalg.inv(make_transform(translate, rotate_deg))
    with torch.no_grad():
        transform.copy_(torch.from_numpy(inverse))
