"""Generate images from a training checkpoint.

``python -m ganops_models.generate --network CKPT|RUN_DIR|latest --seeds 0-63 [--trunc 0.7] [--class K]
[--noise-mode const|random|none] --outdir DIR [--grid]`` writes ``seed<NNNN>.png`` per seed, or one
``grid.png`` (near-square tiling, seeds in order) with ``--grid``. Images use the checkpoint's EMA
generator; the latent of seed s is ``recipe.latents(1, torch.Generator().manual_seed(s))``.
"""
import argparse
import math
import os
import sys
from typing import List

import torch
from PIL import Image

from .training import distributed
from .training.checkpoint import CheckpointError, load_checkpoint, resolve_resume
from .training.options import TrainOptions
from .training.recipes import DataInfo, get_recipe
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


def load_recipe(path: str, device="cpu"):
    """The recipe of a checkpoint with its state loaded (G_ema in eval mode)."""
    ckpt = load_checkpoint(path)
    opts = TrainOptions.from_dict({**ckpt["options"], "device": torch.device(device).type})
    data = DataInfo(**{**ckpt["data"], "resolution": tuple(ckpt["data"]["resolution"])})
    recipe = get_recipe(ckpt["model"])(opts, data, torch.device(device), distributed.DistInfo())
    recipe.load_state_dict(ckpt["state"])
    return recipe


def generate(recipe, seeds: List[int], truncation_psi: float = 1.0, class_idx=None, noise_mode: str = "const",
             batch: int = 16) -> torch.Tensor:
    """Images in [-1, 1], one per seed, [len(seeds), C, H, W] on the CPU."""
    z = torch.cat([recipe.latents(1, torch.Generator().manual_seed(s)) for s in seeds])
    label_dim = recipe.data.label_dim if recipe.opts.cond else 0
    if label_dim > 0:
        if class_idx is None or not 0 <= class_idx < label_dim:
            raise ValueError(f"--class: this network is conditional; give a class in [0, {label_dim}), got {class_idx}")
        c = torch.zeros([len(seeds), label_dim])
        c[:, class_idx] = 1
    elif class_idx is not None:
        raise ValueError("--class: this network is unconditional; leave --class out")
    else:
        c = None
    kwargs = {"noise_mode": noise_mode, "batch": batch}
    if truncation_psi != 1:
        kwargs["truncation_psi"] = truncation_psi
    return recipe.sample(z, c, **kwargs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganops_models.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True,
                   help="checkpoint file (checkpoint-*.pt), a run directory (its newest valid checkpoint), "
                        "or 'latest' (the newest run under ./runs)")
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
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        path = resolve_resume(args.network, "runs", flag="--network")
        recipe = load_recipe(path, args.device)
        images = generate(recipe, seeds, args.trunc, args.class_idx, args.noise_mode)
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
        Image.fromarray(make_grid(torch.cat([images, pad]), (cols, rows))).save(grid_path)
        print(f"wrote {grid_path}: a {cols}x{rows} grid of {len(seeds)} image(s), seeds {args.seeds}")
    else:
        for seed, img in zip(seeds, to_uint8(images)):
            arr = img.permute(1, 2, 0).numpy()
            Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(
                os.path.join(args.outdir, f"seed{seed:04d}.png"))
        print(f"wrote {len(seeds)} image(s) to {args.outdir} (seed<NNNN>.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
