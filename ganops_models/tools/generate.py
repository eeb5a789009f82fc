"""Generate images from a network: a ganops checkpoint or an NVIDIA StyleGAN2 pickle.

``python -m ganops_models.generate --network CKPT|RUN_DIR|latest|X.pkl --seeds 0-63 [--trunc 0.7]
[--class K] [--noise-mode const|random|none] --outdir DIR [--grid]`` writes ``seed<NNNN>.png`` per seed, or one
``grid.png`` (near-square tiling, seeds in order) with ``--grid``; ``--trunc 0`` gives the w_avg picture
for every seed. ``--projected-w FILE`` writes ``proj<NN>.png`` for the ws of a ``projected_w.npz`` instead
(NVIDIA's generate.py). Images use the EMA generator.

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

from ganops_models.tools import latent_space
from ganops_models.network_loader import LoadedNetwork, load_network, seed_latents
from ganops_models.errors import CheckpointError
from ganops_models.images import make_grid, save_png, to_uint8


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


def generate(net: LoadedNetwork, seeds: List[int], truncation_psi: float = 1.0, class_idx=None,
             noise_mode: str = "const", batch: int = 16) -> torch.Tensor:
    """Images in [-1, 1], one per seed, [len(seeds), C, H, W] float32 on the CPU."""
    c = latent_space.class_labels(net, class_idx, len(seeds))
    return net.sample(seed_latents(seeds, net.z_dim), c, truncation_psi, noise_mode, batch)


def write_projected_w(network: str, path: str, outdir: str, device, noise_mode: str = "const") -> int:
    """``generate --projected-w``: proj<NN>.png for each w of a projected_w.npz (NVIDIA's generate.py)."""
    try:
        net = load_network(network, device)
        latent_space.require_w_space(net, "--projected-w")
        ws = latent_space.load_projected_w(path, net)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(outdir, exist_ok=True)
    for idx, w in enumerate(ws):
        save_png(latent_space.synthesize(net.G_ema, w[None], noise_mode)[0],
                                os.path.join(outdir, f"proj{idx:02d}.png"))
    print(f"wrote {len(ws)} image(s) of {path} to {outdir}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganops_models.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True,
                   help="checkpoint file (checkpoint-*.pt), a run directory (its newest valid checkpoint), "
                        "'latest' (the newest run under ./runs), or an NVIDIA StyleGAN2(-ADA) .pkl")
    p.add_argument("--seeds", default="0-7", help="e.g. 0-63 or 1,5,9")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none)")
    p.add_argument("--class", dest="class_idx", type=int, help="class index for conditional networks")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"],
                   help="per-pixel noise of StyleGAN2 generators: const (the same for every image, the default), "
                        "random (new noise each time) or none")
    p.add_argument("--outdir", required=True, help="folder for the images (created if missing)")
    p.add_argument("--grid", action="store_true", help="one grid.png instead of one file per seed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cuda or cpu (default: cuda if available)")
    p.add_argument("--projected-w", help="projected_w.npz (ganops_models.project): write proj<NN>.png of its "
                                         "ws instead of seed pictures (--seeds, --trunc, --class are ignored)")
    args = p.parse_args(argv)
    if args.projected_w is not None:
        return write_projected_w(args.network, args.projected_w, args.outdir, args.device, args.noise_mode)
    try:
        seeds = parse_seeds(args.seeds)
        net = load_network(args.network, args.device)
        path = net.path
        images = generate(net, seeds, args.trunc, args.class_idx, args.noise_mode)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.outdir, exist_ok=True)
    if path != args.network:
        print(f"network: {path}")
    if args.grid:
        cols = math.ceil(math.sqrt(len(seeds)))
        rows = math.ceil(len(seeds) / cols)
        pad = images.new_full([cols * rows - len(seeds), *images.shape[1:]], -1.0)
        grid_path = os.path.join(args.outdir, "grid.png")
        save_png(make_grid(torch.cat([images, pad]), (cols, rows)), grid_path)
        print(f"wrote {grid_path}: a {cols}x{rows} grid of {len(seeds)} image(s), seeds {args.seeds}")
    else:
        for seed, img in zip(seeds, to_uint8(images)):
            save_png(img, os.path.join(args.outdir, f"seed{seed:04d}.png"))
        print(f"wrote {len(seeds)} image(s) to {args.outdir} (seed<NNNN>.png)")
    return 0
