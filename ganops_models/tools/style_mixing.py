"""Style-mixing grid (NVIDIA's style_mixing.py).

``python -m ganops_models.style_mixing --network NET --rows 0,1,2 --cols 3,4,5 [--styles 0-6] [--trunc 1]
--out grid.png``: a (rows+1) x (cols+1) grid of pictures; the top-left cell is black, the top row holds the
column seeds' pictures, the left column the row seeds' pictures, and cell (r, c) the row seed's ws with the
layers in ``--styles`` taken from the column seed (NVIDIA's layout and defaults; the default 0-6 is cut
to the layers a small network has). ``--save-cells`` also writes every cell as NVIDIA's style_mixing.py
does, beside the grid: ``<row>-<col>.png`` for each mix, ``<seed>-<seed>.png`` for each row's and
column's own picture.
"""
import argparse
import os
from typing import List

import numpy as np
import torch
from tqdm import tqdm

from ganops_models.tools import latent_space
from ganops_models.tools.generate import check_trunc, parse_seeds
from ganops_models.network_loader import load_network
from ganops_models.tools.cli import ArgumentParser, add_common_arguments, run_main
from ganops_models.files import output_folder
from ganops_models.images import save_png, tile_uint8


def _seed_list(text: str, flag: str) -> List[int]:
    try:
        return parse_seeds(text)
    except ValueError:
        raise ValueError(f"{flag} must be a comma list of non-negative seeds or ranges like 0-3, "
                         f"got {text!r}") from None


def parse_styles(text: str, num_ws: int) -> List[int]:
    """'0-6' or '0,2,4' -> layer indices, each in [0, num_ws)."""
    try:
        styles = parse_seeds(text)
    except ValueError:
        raise ValueError(f"--styles must be layer indices such as 0-6 or 0,2,4, got {text!r}") from None
    if max(styles) >= num_ws:
        raise ValueError(f"--styles: this network has {num_ws} style layers (0-{num_ws - 1}), got {text!r}")
    return sorted(set(styles))


def style_mixing_grid(net, row_seeds: List[int], col_seeds: List[int], styles: List[int],
                      truncation_psi: float = 1.0, noise_mode: str = "const", class_idx=None,
                      batch: int = 8) -> np.ndarray:
    """The HxWx3 uint8 grid of the module doc."""
    row_ws = latent_space.seed_ws(net, row_seeds, truncation_psi, class_idx)
    col_ws = latent_space.seed_ws(net, col_seeds, truncation_psi, class_idx)
    mixed = row_ws[:, None].repeat(1, len(col_seeds), 1, 1)
    mixed[:, :, styles] = col_ws[None, :, styles]
    cells = torch.cat([latent_space.w_avg_ws(net), col_ws, torch.cat([row_ws[:, None], mixed], 1).flatten(0, 1)])
    images = torch.cat([latent_space.synthesize(net.G_ema, ws, noise_mode)
                        for ws in tqdm(cells.split(batch), desc="style mixing", unit="batch")])
    images[0] = 0    # top-left: black
    return tile_uint8(images, (len(col_seeds) + 1, len(row_seeds) + 1))


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.style_mixing", description=__doc__.split("\n\n")[0])
    add_common_arguments(p)
    p.add_argument("--rows", required=True, help="row seeds, e.g. 0,1,2")
    p.add_argument("--cols", required=True, help="column seeds, e.g. 3,4,5")
    p.add_argument("--styles", help="layers taken from the column seed (default 0-6, NVIDIA's; on a network "
                                    "with fewer layers, all of them up to 6)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none)")
    p.add_argument("--out", required=True, help="output image (.png)")
    p.add_argument("--save-cells", action="store_true",
                   help="also write each cell as <row>-<col>.png (and <seed>-<seed>.png) in --out's folder, as NVIDIA")
    return p


def save_cells(grid: np.ndarray, rows: List[int], cols: List[int], folder: str) -> int:
    """NVIDIA's per-cell PNGs of a style-mixing ``grid`` (as :func:`style_mixing_grid` lays it out); returns
    how many were written."""
    h, w = grid.shape[0] // (len(rows) + 1), grid.shape[1] // (len(cols) + 1)
    cells = {(c, c): (0, j + 1) for j, c in enumerate(cols)}
    cells.update({(r, r): (i + 1, 0) for i, r in enumerate(rows)})
    cells.update({(r, c): (i + 1, j + 1) for i, r in enumerate(rows) for j, c in enumerate(cols)})
    for (a, b), (i, j) in cells.items():
        save_png(grid[i * h:(i + 1) * h, j * w:(j + 1) * w], os.path.join(folder, f"{a}-{b}.png"))
    return len(cells)


def _run(args) -> int:
    rows, cols = _seed_list(args.rows, "--rows"), _seed_list(args.cols, "--cols")
    check_trunc(args.trunc)
    net = load_network(args.network, args.device)
    latent_space.require_w_space(net, "style_mixing")
    num_ws = net.G_ema.num_ws
    styles = parse_styles(args.styles, num_ws) if args.styles is not None else list(range(min(7, num_ws)))
    grid = style_mixing_grid(net, rows, cols, styles, args.trunc, args.noise_mode, args.class_idx)
    output_folder(os.path.dirname(os.path.abspath(args.out)), "--out")
    save_png(grid, args.out)
    print(f"wrote a {len(rows) + 1}x{len(cols) + 1} style-mixing grid to {args.out}")
    if args.save_cells:
        folder = os.path.dirname(os.path.abspath(args.out))
        print(f"wrote {save_cells(grid, rows, cols, folder)} cell picture(s) (<row>-<col>.png) to {folder}")
    return 0


def main(argv=None) -> int:
    return run_main(_run, build_parser(), argv)
