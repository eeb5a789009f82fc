"""Interpolation videos through the latent space of a StyleGAN network (NVIDIA's gen_video.py).

``python -m ganops_models.video --network NET --seeds 0,1,2 [--frames 120] [--no-loop] [--space z|w]
[--interp slerp|lerp|cubic] [--grid WxH] [--trunc 0.7] [--fps 60] --out interp.mp4|interp.gif``

The keyframes are the seeds (or, with ``--projected a.npz,b.npz``, projected real images) in order.
``--frames`` is the number of frames per transition (see :mod:`ganops_models.tools.interpolation` for the
frame count and the curves); the first frame is exactly the picture ``generate`` writes for the first
seed (before H.264 compression). ``--space w`` (default, as NVIDIA) interpolates the truncated ws of the
keyframes; ``--space z`` interpolates the latents and maps every frame (truncation after the mapping); networks
without a w space (ProGAN, DCGAN, FastGAN) take ``--space z`` and generate every frame from z.
``--grid WxH`` plays W*H videos side by side: the keyframes are split in order into W*H equal runs, run
i in cell i (row-major), as NVIDIA's ``--grid``. Defaults are NVIDIA gen_video.py's: 120 frames per
transition (its ``--w-frames``) at 60 fps, and the path wraps around to the first keyframe (a seamless
loop; ``--no-loop`` ends at the last keyframe). Difference: the cubic curve is Catmull-Rom instead of
scipy's spline over the wrapped keyframes.
"""
import argparse
import os
from typing import Iterator, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from ganops_models.tools import latent_space
from ganops_models.tools.generate import check_trunc, parse_seeds
from ganops_models.tools.interpolation import KINDS, interpolation_path, path_length
from ganops_models.network_loader import LoadedNetwork, load_network, seed_latents
from ganops_models.tools.cli import ArgumentParser, add_common_arguments, finished, run_main
from ganops_models.errors import NoWSpaceError
from ganops_models.files import output_folder
from ganops_models.images import check_finite, tile_uint8, to_uint8
from ganops_models.tools.video_io import VideoWriter, check_video_path


def parse_grid(text: str):
    """'3x2' -> (3, 2) (columns, rows)."""
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--grid must be COLSxROWS such as 2x2, got {text!r}") from None
    if cols < 1 or rows < 1:
        raise ValueError(f"--grid must be COLSxROWS with both >= 1, got {text!r}")
    return cols, rows


def arrange_keyframes(items: torch.Tensor, cells: int) -> torch.Tensor:
    """[L, ...] keyframe items -> [K, cells, ...] with K = L / cells; cell i plays items i*K .. i*K+K-1."""
    if len(items) % cells:
        raise ValueError(f"{len(items)} keyframes cannot be split evenly over a grid of {cells} cells; "
                         f"give a multiple of {cells}")
    return items.reshape(cells, len(items) // cells, *items.shape[1:]).transpose(0, 1)


def load_projected_keyframes(net: LoadedNetwork, paths: List[str]) -> torch.Tensor:
    """All rows of the given projected_w.npz files, [L, num_ws, w_dim]."""
    return torch.cat([latent_space.load_projected_w(p, net) for p in paths])


def video_frames(net: LoadedNetwork, keys: torch.Tensor, grid, frames: int, loop: bool = False,
                 kind: str = "cubic", space: str = "w", truncation_psi: float = 1.0,
                 class_idx: Optional[int] = None, noise_mode: str = "const") -> Iterator[np.ndarray]:
    """HxWx3 uint8 frames. ``keys`` [K, cols*rows, num_ws, w_dim] (space 'w') or [K, cols*rows, z_dim]
    (space 'z', mapped with ``truncation_psi`` per frame)."""
    for point in interpolation_path(keys, frames, loop, kind):
        if space == "z" and not net.has_w_space:      # ProGAN, DCGAN, FastGAN: z straight to images
            labels = latent_space.class_labels(net, class_idx, len(point))
            images = check_finite(net.sample(point, labels, truncation_psi, noise_mode), "the generator")
            yield tile_uint8(to_uint8(images), grid)
            continue
        ws = latent_space.z_to_ws(net, point, truncation_psi, class_idx) if space == "z" else point
        yield tile_uint8(latent_space.synthesize(net.G_ema, ws, noise_mode), grid)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.video", description=__doc__.split("\n\n")[0])
    add_common_arguments(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seeds", help="keyframe seeds in order, e.g. 0,1,2 or 0-7")
    src.add_argument("--projected", help="keyframes from projected_w.npz files (ganops_models.project), comma list")
    p.add_argument("--frames", type=int, default=120, help="frames per transition (default: 120, NVIDIA's)")
    p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                   help="wrap around to the first keyframe, a seamless loop, as NVIDIA's gen_video.py (default: on)")
    p.add_argument("--space", choices=["z", "w"], default="w", help="interpolate latents z or ws")
    p.add_argument("--interp", choices=list(KINDS), default="cubic")
    p.add_argument("--grid", default="1x1", help="COLSxROWS videos side by side")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi of the seeds (1 = none)")
    p.add_argument("--fps", type=float, default=60, help="frames per second (default: 60, NVIDIA's)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264) or .gif")
    return p


def _run(args) -> int:
    check_video_path(args.out)
    check_trunc(args.trunc)
    grid = parse_grid(args.grid)
    cells = grid[0] * grid[1]
    if args.projected is not None and args.space == "z":
        raise ValueError("--projected keyframes are ws: use --space w (the default)")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    net = load_network(args.network, args.device)
    if args.space == "w" or args.projected is not None:
        try:
            latent_space.require_w_space(net, "video")
        except NoWSpaceError as e:
            raise latent_space.NoWSpaceError(f"{e} For a video between seeds use --space z.") from None
    if seeds is None:
        items = load_projected_keyframes(net, [p for p in args.projected.split(",") if p]).to(args.device)
    elif args.space == "z":
        items = seed_latents(seeds, net.z_dim)
    else:
        items = latent_space.seed_ws(net, seeds, args.trunc, args.class_idx)
    keys = arrange_keyframes(items, cells)
    total = path_length(len(keys), args.frames, args.loop)
    frames = video_frames(net, keys, grid, args.frames, args.loop, args.interp, args.space, args.trunc,
                          args.class_idx, args.noise_mode)
    output_folder(os.path.dirname(os.path.abspath(args.out)), "--out")
    finished(f"{args.out} was not written (0 of {total} frames done)")
    with VideoWriter(args.out, args.fps) as writer:
        for frame in tqdm(frames, total=total, desc="video", unit="frame"):
            writer.append(frame)
            finished(f"{args.out} was not written ({writer.count} of {total} frames done)")
    print(f"wrote {writer.count} frames ({writer.count / args.fps:.1f} s) to {args.out}")
    return 0


def main(argv=None) -> int:
    return run_main(_run, build_parser(), argv)
