"""python -m ganops_models.metrics --metrics fid,kid,swd --real DIR|ZIP (--fake DIR|ZIP | --network CKPT)
[--num N] [--json] [--inception PATH] [--resize tf|pytorch-fid|clean] [--device D] [--batch B]
[--cache-dir DIR | --no-cache] [--seed S] [--trunc PSI]

Prints one "name: value" line per result (or one JSON object with --json); exit status 2 with a
message on bad arguments, missing Inception weights or an unreadable checkpoint.  With --network,
images come from the checkpoint's EMA generator (uniformly random classes if conditional).
"""
import argparse
import json
import sys

import torch

from .evaluate import evaluate, make_generator_fn
from .resize import RESIZE_MODES


def build_parser():
    p = argparse.ArgumentParser(prog="python -m ganops_models.metrics", description=__doc__.split("\n")[0])
    p.add_argument("--metrics", required=True, help="comma list: fid, kid, swd, fid50k_full, kid10k, swd16k, ...")
    p.add_argument("--real", required=True, help="folder or zip of real images")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fake", help="folder or zip of generated images")
    src.add_argument("--network", help="training checkpoint (or NVIDIA StyleGAN2 .pkl) whose G_ema generates the images")
    p.add_argument("--num", type=int, default=None, help="number of fake/generated images (default: per metric)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--inception", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--resize", default="tf", choices=RESIZE_MODES,
                   help="reference pipeline: tf (torch-fidelity/StyleGAN2-ADA), pytorch-fid, clean (clean-fid)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="real-statistics cache (default $GANOPS_CACHE/metrics)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the statistics cache")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi for --network")
    return p


def network_generator_fn(path, device, trunc=1.0):
    """generator_fn of a network's EMA generator (checkpoint or NVIDIA pickle; random one-hot classes
    if conditional)."""
    from ..network_loader import CheckpointError, load_network
    try:
        net = load_network(path, device)
    except CheckpointError as err:
        raise ValueError(f"--network: {err}") from None
    return make_generator_fn(lambda z, c: net.sample(z, c, truncation_psi=trunc),
                             lambda n, gen: torch.randn([n, net.z_dim], generator=gen), device, net.c_dim)


def main(argv=None):
    args = build_parser().parse_args(argv)
    fake = args.fake if args.fake is not None else network_generator_fn(args.network, args.device, args.trunc)
    cache_dir = False if args.no_cache else args.cache_dir
    log = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    results = evaluate(args.metrics, fake, args.real, device=args.device, num_gen=args.num,
                       inception_path=args.inception, cache_dir=cache_dir, batch_size=args.batch,
                       resize=args.resize, seed=args.seed, log=log)
    if args.json:
        print(json.dumps(results))
    else:
        for name, value in results.items():
            print(f"{name}: {value:.6g}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
