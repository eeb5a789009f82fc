"""Project a real image into the w space of a StyleGAN network (NVIDIA's projector.py).

``python -m ganops_models.project --network NET --target IMG [--steps 1000] [--seed 303] [--w-plus]
[--save-video] [--vgg PATH] --outdir DIR`` writes ``target.png`` (the target, centre-cropped to the
network's aspect ratio and resized with Lanczos to its resolution), ``proj.png`` (the final picture),
``projected_w.npz`` (``w`` [1, num_ws, w_dim], for ``generate --projected-w`` and ``video --projected``)
and, with ``--save-video``, ``proj.mp4`` (target | picture of every step, 10 fps, as NVIDIA).

NVIDIA's semantics and defaults: w starts at the mean of the ws of 10,000 latents
(``RandomState(123)``), with w_std their RMS distance to it; Adam (betas 0.9, 0.999) on w and on the
noise maps (re-drawn from N(0, 1) at the start and renormalised to zero mean, unit variance after each
step); learning rate 0.1 ramped up over the first 5 % of steps and down with a cosine over the last
25 %; Gaussian noise of w_std * 0.05 * max(0, 1 - t / 0.75)^2 added to w; the loss is the distance plus
1e5 times the noise regulariser (squared autocorrelation of every noise map at shifts of one pixel, over
a pyramid down to 8x8). ``torch.manual_seed(seed)`` before starting.
Differences: the distance is LPIPS-VGG16 from local weights (``--vgg``, see
:mod:`ganops_models.tools.projection_loss`; NVIDIA's TorchScript vgg16.pt is refused because it contains
code), otherwise the documented weight-free distance; ``--w-plus`` optimises one w per layer (NVIDIA:
one w for all layers, the default here too); conditional networks take ``--class`` (w_avg of that class).
As NVIDIA's, the optimised noise maps stay inside the projection: ``proj.png`` and ``proj.mp4`` draw the
ws with the network's own constant noise, so ``generate --projected-w`` gives exactly ``proj.png``
(converted to uint8 as generate does, x * 127.5 + 128 truncated; NVIDIA's projector truncates
(x + 1) * 127.5, half a level lower).
"""
import argparse
import copy
import dataclasses
import math
import os
from typing import Callable, List, Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.nn import functional as F
from tqdm import tqdm

from ganops_models.tools import latent_space
from ganops_models.files import output_folder
from ganops_models.images import save_png
from ganops_models.nn.lpips import load_lpips
from ganops_models.errors import LPIPSWeightsError
from ganops_models.network_loader import load_network
from ganops_models.tools.projection_loss import LPIPSDistance, WeightFreeDistance
from ganops_models.tools.cli import ArgumentParser, add_common_arguments, finished, run_main
from ganops_models.tools.video_io import VideoWriter


@dataclasses.dataclass
class Projection:
    ws: torch.Tensor          # [steps, num_ws, w_dim]: w after every step
    dist: List[float]         # the distance at every step (before its update)


def load_target(path: str, resolution, channels: int = 3) -> np.ndarray:
    """uint8 HxWx3 (or HxW for 1 channel): ``path`` centre-cropped to the aspect ratio of ``resolution``
    (H, W) and resized to it with Lanczos."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
    except FileNotFoundError:
        raise ValueError(f"--target {path!r} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"--target {path!r} is not an image Pillow can read ({e}); give a PNG/JPEG/...") from None
    h, w = resolution
    iw, ih = img.size
    cw, ch = (round(ih * w / h), ih) if iw * h > ih * w else (iw, round(iw * h / w))
    left, top = (iw - cw) // 2, (ih - ch) // 2
    return np.asarray(img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.LANCZOS))


def noise_regularization(noise_maps) -> torch.Tensor:
    """sum over maps and pyramid levels (down to 8) of the squared mean products with the map shifted by
    one pixel along x and along y (NVIDIA's projector)."""
    reg = 0.0
    for v in noise_maps:
        noise = v[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


@torch.no_grad()
def w_statistics(G, num_samples: int = 10000, c: Optional[torch.Tensor] = None, batch: int = 1000):
    """(w_avg [1, 1, w_dim], w_std) of the ws of ``RandomState(123).randn(num_samples, z_dim)``."""
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(123).randn(num_samples, G.z_dim)).float()
    ws = torch.cat([G.mapping(zb.to(device), None if c is None else c.expand(len(zb), -1))[:, :1]
                    for zb in z.split(batch)])
    w_avg = ws.mean(0, keepdim=True)
    return w_avg, float(((ws - w_avg).square().sum() / num_samples).sqrt())


def lr_schedule(t: float, initial: float = 0.1, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Learning rate at progress t = step / steps."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def project(G, distance: Callable[[torch.Tensor], torch.Tensor], num_steps: int = 1000, *,
            w_avg_samples: int = 10000, initial_learning_rate: float = 0.1, initial_noise_factor: float = 0.05,
            lr_rampdown_length: float = 0.25, lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75,
            regularize_noise_weight: float = 1e5, w_plus: bool = False, c: Optional[torch.Tensor] = None,
            progress: bool = True) -> Projection:
    """Optimise w so that ``distance(G.synthesis(ws, noise_mode='const'))`` is small (module doc); ``G`` is
    not changed (the noise maps are optimised on a copy)."""
    if num_steps < 1:
        raise ValueError(f"--steps must be >= 1, got {num_steps}")
    G = copy.deepcopy(G).eval().requires_grad_(False)
    num_ws = G.num_ws
    w_avg, w_std = w_statistics(G, w_avg_samples, c)
    noise_bufs = [buf for name, buf in G.synthesis.named_buffers() if "noise_const" in name]
    w_opt = (w_avg.repeat(1, num_ws, 1) if w_plus else w_avg).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt] + noise_bufs, betas=(0.9, 0.999), lr=initial_learning_rate)
    with torch.no_grad():
        for buf in noise_bufs:
            buf.copy_(torch.randn_like(buf))
            buf.requires_grad_(True)
    w_out, dists = [], []
    for step in tqdm(range(num_steps), desc="project", unit="step", disable=not progress):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        for group in optimizer.param_groups:
            group["lr"] = lr_schedule(t, initial_learning_rate, lr_rampdown_length, lr_rampup_length)
        ws = w_opt + torch.randn_like(w_opt) * w_noise_scale
        synth = G.synthesis(ws if w_plus else ws.repeat(1, num_ws, 1), noise_mode="const")
        dist = distance(synth)
        loss = dist + noise_regularization(noise_bufs) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        dists.append(float(dist.detach()))
        w_out.append(w_opt.detach()[0].expand(num_ws, -1).clone())
        with torch.no_grad():
            for buf in noise_bufs:
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
    return Projection(ws=torch.stack(w_out), dist=dists)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.project", description=__doc__.split("\n\n")[0])
    add_common_arguments(p, noise_mode=False)
    p.add_argument("--target", required=True, help="image file to project")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps")
    p.add_argument("--seed", type=int, default=303, help="random seed (noise maps, w noise) (default: 303, NVIDIA's)")
    p.add_argument("--w-plus", action="store_true", help="optimise one w per layer (W+) instead of one w")
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4 of the optimisation")
    p.add_argument("--vgg", help="VGG16 weights for the distance: torchvision's VGG16 state dict, then "
                                 "',LINEAR_HEADS' (lpips' vgg.pth) for LPIPS. With the VGG16 file alone the "
                                 "distance is VGG16 features with unit heads, not LPIPS (NVIDIA's projector uses "
                                 "LPIPS); without --vgg a weight-free distance is used")
    p.add_argument("--outdir", required=True)
    return p


def distance_name(lpips) -> str:
    """What the projection minimises, for the log line."""
    if lpips is None:
        return "weight-free (D features and pixels; not LPIPS: give --vgg VGG16,LINEAR_HEADS for LPIPS)"
    if lpips.unit_heads:
        return "VGG16 features with unit heads (not LPIPS: add ',LINEAR_HEADS' to --vgg for LPIPS)"
    return "LPIPS-VGG16 (NVIDIA's projector distance)"


def _run(args) -> int:
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    net = load_network(args.network, args.device)
    latent_space.require_w_space(net, "project")
    c = latent_space.class_labels(net, args.class_idx, 1)
    target_u8 = load_target(args.target, net.resolution, net.img_channels)
    target = torch.from_numpy(target_u8.reshape(*net.resolution, -1).copy()).permute(2, 0, 1)[None]
    target = target.to(args.device, torch.float32) / 127.5 - 1
    try:
        lpips = load_lpips(args.vgg, args.device, unit_heads=True) if args.vgg else None
        distance = LPIPSDistance(lpips, target) if lpips is not None else WeightFreeDistance(net.D, target)
    except LPIPSWeightsError as e:
        raise ValueError(f"--vgg: {e}") from None
    print(f"distance: {distance_name(lpips)}")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    output_folder(args.outdir, "--outdir")
    result = project(net.G_ema, distance, args.steps, w_plus=args.w_plus, c=c)
    save_png(target_u8, os.path.join(args.outdir, "target.png"))
    final = result.ws[-1:]
    save_png(latent_space.synthesize(net.G_ema, final)[0], os.path.join(args.outdir, "proj.png"))
    latent_space.save_projected_w(os.path.join(args.outdir, "projected_w.npz"), final)
    finished(f"wrote target.png, proj.png and projected_w.npz to {args.outdir}")
    if args.save_video:
        target_rgb = np.broadcast_to(target_u8.reshape(*net.resolution, -1), (*net.resolution, 3))
        with VideoWriter(os.path.join(args.outdir, "proj.mp4"), fps=10, bitrate="16M") as video:
            for w in tqdm(result.ws, desc="proj.mp4", unit="frame"):
                synth = latent_space.synthesize(net.G_ema, w[None])[0].expand(3, -1, -1).permute(1, 2, 0)
                video.append(np.concatenate([target_rgb, synth.numpy()], axis=1))
    print(f"distance {result.dist[0]:.4g} -> {result.dist[-1]:.4g} after {args.steps} steps; wrote {args.outdir}")
    return 0


def main(argv=None) -> int:
    return run_main(_run, build_parser(), argv)
