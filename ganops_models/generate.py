"""Generate images from a network: a ganops checkpoint or an NVIDIA StyleGAN2 pickle.

``python -m ganops_models.generate --network CKPT|RUN_DIR|latest|X.pkl --seeds 0-63 [--trunc 0.7]
[--class K] [--noise-mode const|random|none] --outdir DIR [--grid]`` writes ``seed<NNNN>.png`` per seed, or one
``grid.png`` (near-square tiling, seeds in order) with ``--grid``. Images use the EMA generator.

Seeds follow NVIDIA's generate.py for every format: the latent of seed s is
``np.random.RandomState(s).randn(1, z_dim)`` and pixels are ``(img * 127.5 + 128).clamp(0, 255)`` as uint8,
so an NVIDIA pickle gives NVIDIA's pictures. (Before issue #16 ganops checkpoints drew z from
``torch.Generator().manual_seed(s)``, so their seeds now name other pictures.)
"""
import argparse
import math
import os
import sys
from typing import List

import torch
from PIL import Image

from .network_loader import CheckpointError, LoadedNetwork, load_network, seed_latents
from .training.reporting import make_grid, to_uint8


def parse_seeds(text: str) -> List[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"--seeds must be a comma list of non-negative ints or ranges like 0-63, "
                         f"got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds must be a comma list of non-negative ints or ranges like 0-63, got {text!r}")
    return seeds


@torch.no_grad()
def generate(net: LoadedNetwork, seeds: List[int], truncation_psi: float = 1.0, class_idx=None,
             noise_mode: str = "const", batch: int = 16) -> torch.Tensor:
    """Images in [-1, 1], one per seed, [len(seeds), C, H, W] float32 on the CPU."""
    z = seed_latents(seeds, net.z_dim)
    if net.c_dim > 0:
        if class_idx is None or not 0 <= class_idx < net.c_dim:
            raise ValueError(f"--class: this network is conditional; give a class in [0, {net.c_dim}), got {class_idx}")
        c = torch.zeros([len(seeds), net.c_dim])
        c[:, class_idx] = 1
    elif class_idx is not None:
        raise ValueError("--class: this network is unconditional; leave --class out")
    else:
        c = torch.zeros([len(seeds), 0])
    if net.recipe is not None:   # ganops checkpoints of any model sample through their recipe
        kwargs = {"noise_mode": noise_mode, "batch": batch}
        if truncation_psi != 1:
            kwargs["truncation_psi"] = truncation_psi
        return net.recipe.sample(z, c if net.c_dim > 0 else None, **kwargs)
    device = next(net.G_ema.parameters()).device
    return torch.cat([net.G_ema(zb.to(device), cb.to(device), truncation_psi=truncation_psi,
                                noise_mode=noise_mode).float().cpu()
                      for zb, cb in zip(z.split(batch), c.split(batch))])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganops_models.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True,
                   help="checkpoint file (checkpoint-*.pt), a run directory (its newest valid checkpoint), "
                        "'latest' (the newest run under ./runs), or an NVIDIA StyleGAN2(-ADA) .pkl")
    p.add_argument("--seeds", default="0-7", help="e.g. 0-63 or 1,5,9")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none)")
    p.add_argument("--class", dest="class_idx", type=int, help="class index for conditional networks")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    p.add_argument("--outdir", required=True)
    p.add_argument("--grid", action="store_true", help="one grid.png instead of one file per seed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        net = load_network(args.network, args.device)
        images = generate(net, seeds, args.trunc, args.class_idx, args.noise_mode)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.outdir, exist_ok=True)
    if args.grid:
        cols = math.ceil(math.sqrt(len(seeds)))
        rows = math.ceil(len(seeds) / cols)
        pad = images.new_full([cols * rows - len(seeds), *images.shape[1:]], -1.0)
        Image.fromarray(make_grid(torch.cat([images, pad]), (cols, rows))).save(os.path.join(args.outdir, "grid.png"))
    else:
        for seed, img in zip(seeds, to_uint8(images)):
            arr = img.permute(1, 2, 0).numpy()
            Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(
                os.path.join(args.outdir, f"seed{seed:04d}.png"))
    print(f"wrote {len(seeds)} image(s) to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
