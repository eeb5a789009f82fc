"""Generate images from a network: a ganops checkpoint or an NVIDIA StyleGAN2 pickle.

``python -m ganops_models.generate --network CKPT|RUN_DIR|latest|X.pkl --seeds 0-63 [--trunc 0.7]
[--class K] [--noise-mode const|random|none] --outdir DIR [--grid]`` writes ``seed<NNNN>.png`` per seed, or one
``grid.png`` (near-square tiling, seeds in order) with ``--grid``; ``--trunc 0`` gives the w_avg picture
for every seed. ``--projected-w FILE`` writes ``proj<NN>.png`` for the ws of a ``projected_w.npz`` instead
(NVIDIA's generate.py). Images use the EMA generator. For StyleGAN3 networks ``--translate X,Y`` and
``--rotate DEG`` set the input transform as NVIDIA's gen_images.py does (the inverse of its
``make_transform``); other networks refuse them.

Images are generated and written a batch at a time, each PNG whole or absent; at most
:data:`MAX_SEEDS` seeds, and :data:`MAX_GRID` with ``--grid`` (one picture in memory). A network
whose pixels come out NaN or infinite (a diverged run) is refused, so is a non-finite ``--trunc``.

Seeds follow NVIDIA's generate.py for every format: the latent of seed s is
``np.random.RandomState(s).randn(1, z_dim)`` and pixels are ``(img * 127.5 + 128).clamp(0, 255)`` as uint8,
so an NVIDIA pickle gives NVIDIA's pictures. (Before issue #16 ganops checkpoints drew z from
``torch.Generator().manual_seed(s)``, so their seeds now name other pictures.)
"""
import argparse
import math
import os
from typing import Iterator, List

import torch

from ganops_models.tools import latent_space
from ganops_models.tools.cli import ArgumentParser, check_device, finishing, run_command
from ganops_models.network_loader import LoadedNetwork, load_network, seed_latents
from ganops_models.files import output_folder
from ganops_models.images import check_finite, make_grid, save_png, to_uint8

MAX_SEEDS = 1_000_000      # seeds of one command (written one batch at a time)
MAX_GRID = 1024            # images of one --grid picture (32x32; it is built in memory)
BATCH = 16


def _seed_error(text: str, why: str = "") -> ValueError:
    return ValueError(f"--seeds must be a comma list of non-negative ints or ranges like 0-63{why}, got {text!r}")


def parse_seeds(text: str, limit: int = MAX_SEEDS) -> List[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; seeds are in [0, 2**32) (numpy's RandomState) and at most ``limit``
    of them (counted before any range is expanded)."""
    parts = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
            else:
                lo = hi = int(part)
            if hi < lo or lo < 0:
                raise ValueError
            parts.append((lo, hi))
    except ValueError:
        raise _seed_error(text) from None
    if not parts:
        raise _seed_error(text)
    if max(hi for _, hi in parts) >= 2 ** 32:
        raise _seed_error(text, " (each below 2**32)")
    count = sum(hi - lo + 1 for lo, hi in parts)
    if count > limit:
        raise ValueError(f"--seeds {text!r} names {count} seeds; at most {limit} per command")
    return [s for lo, hi in parts for s in range(lo, hi + 1)]


def check_trunc(psi: float) -> float:
    """``--trunc`` must be a finite number (NaN or inf would make every picture NaN)."""
    if not math.isfinite(psi):
        raise ValueError(f"--trunc must be a finite number (1 = no truncation), got {psi}")
    return psi


def generate(net: LoadedNetwork, seeds: List[int], truncation_psi: float = 1.0, class_idx=None,
             noise_mode: str = "const", batch: int = BATCH) -> torch.Tensor:
    """Images in [-1, 1], one per seed, [len(seeds), C, H, W] float32 on the CPU; NaN or infinite
    pixels raise :class:`~ganops_models.errors.NonFiniteOutputError`."""
    c = latent_space.class_labels(net, class_idx, len(seeds))
    images = net.sample(seed_latents(seeds, net.z_dim), c, check_trunc(truncation_psi), noise_mode, batch)
    return check_finite(images, f"{net.path} (seeds {seeds[0]}..{seeds[-1]})")


def generate_batches(net: LoadedNetwork, seeds: List[int], truncation_psi: float = 1.0, class_idx=None,
                     noise_mode: str = "const", batch: int = BATCH) -> Iterator[torch.Tensor]:
    """:func:`generate` a batch of seeds at a time (memory does not grow with the number of seeds)."""
    for i in range(0, len(seeds), batch):
        yield generate(net, seeds[i:i + batch], truncation_psi, class_idx, noise_mode, batch)


def write_projected_w(network: str, path: str, outdir: str, device, noise_mode: str = "const") -> int:
    """``generate --projected-w``: proj<NN>.png for each w of a projected_w.npz (NVIDIA's generate.py)."""
    net = load_network(network, device)
    latent_space.require_w_space(net, "--projected-w")
    ws = latent_space.load_projected_w(path, net)
    output_folder(outdir, "--outdir")
    for idx, w in enumerate(ws):
        image = latent_space.synthesize(net.G_ema, w[None], noise_mode)[0]
        with finishing(f"wrote {idx + 1} of {len(ws)} image(s) to {outdir} (proj<NN>.png)"):
            save_png(image, os.path.join(outdir, f"proj{idx:02d}.png"))
    print(f"wrote {len(ws)} image(s) of {path} to {outdir}")
    return 0


def write_grid(net: LoadedNetwork, args, seeds: List[int]) -> None:
    """One grid.png of every seed (near-square, seeds in order, blank cells black)."""
    images = generate(net, seeds, args.trunc, args.class_idx, args.noise_mode)
    cols = math.ceil(math.sqrt(len(seeds)))
    rows = math.ceil(len(seeds) / cols)
    pad = images.new_full([cols * rows - len(seeds), *images.shape[1:]], -1.0)
    grid_path = os.path.join(args.outdir, "grid.png")
    save_png(make_grid(torch.cat([images, pad]), (cols, rows)), grid_path)
    print(f"wrote {grid_path}: a {cols}x{rows} grid of {len(seeds)} image(s), seeds {args.seeds}")


def write_seeds(net: LoadedNetwork, args, seeds: List[int]) -> None:
    """seed<NNNN>.png per seed, a batch at a time; each file whole or absent."""
    written = 0
    for images in generate_batches(net, seeds, args.trunc, args.class_idx, args.noise_mode):
        for img in to_uint8(images):
            with finishing(f"wrote {written + 1} of {len(seeds)} image(s) to {args.outdir} (seed<NNNN>.png)"):
                save_png(img, os.path.join(args.outdir, f"seed{seeds[written]:04d}.png"))
            written += 1
    print(f"wrote {len(seeds)} image(s) to {args.outdir} (seed<NNNN>.png)")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True,
                   help="checkpoint file (checkpoint-*.pt), a run directory (its newest valid checkpoint), "
                        "'latest' (the newest run under ./runs), or an NVIDIA StyleGAN2(-ADA) .pkl")
    p.add_argument("--seeds", default="0-7", help=f"e.g. 0-63 or 1,5,9 (at most {MAX_SEEDS}; {MAX_GRID} with --grid)")
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
    p.add_argument("--translate", type=parse_vec2, default=(0.0, 0.0), metavar="X,Y",
                   help="StyleGAN3 only: translate the picture by X,Y (NVIDIA's gen_images.py; default: 0,0)")
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEG",
                   help="StyleGAN3 only: rotate the picture by DEG degrees (NVIDIA's gen_images.py; default: 0)")
    return p


def parse_vec2(text: str):
    """'0.3,1' -> (0.3, 1.0), finite numbers (NVIDIA's parse_vec2)."""
    try:
        x, y = (float(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers X,Y, e.g. 0.3,1, got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return x, y


def apply_input_transform(net: LoadedNetwork, translate, rotate: float) -> None:
    """``--translate``/``--rotate``: StyleGAN3's input transform; refused for other networks when not zero."""
    if tuple(translate) == (0.0, 0.0) and rotate == 0.0:
        return
    if not math.isfinite(rotate):
        raise ValueError(f"--rotate must be a finite number of degrees, got {rotate}")
    try:
        latent_space.set_input_transform(net.G_ema, tuple(translate), rotate)
    except ValueError:
        raise ValueError(f"--translate/--rotate: only StyleGAN3 networks have an input transform; {net.path} is "
                         f"a {net.kind} network") from None


def _run(args) -> int:
    device = check_device(args.device)
    if args.projected_w is not None:
        return write_projected_w(args.network, args.projected_w, args.outdir, device, args.noise_mode)
    seeds = parse_seeds(args.seeds, MAX_GRID if args.grid else MAX_SEEDS)
    check_trunc(args.trunc)
    net = load_network(args.network, device)
    apply_input_transform(net, args.translate, args.rotate)
    output_folder(args.outdir, "--outdir")
    if net.path != args.network:
        print(f"network: {net.path}")
    (write_grid if args.grid else write_seeds)(net, args, seeds)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args))
