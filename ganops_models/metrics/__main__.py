"""python -m ganops_models.metrics --metrics fid,kid,swd [--real DIR|ZIP] (--fake DIR|ZIP | --network NET)
[--num N] [--json] [--inception PATH] [--resize tf|pytorch-fid|clean] [--device D] [--batch B]
[--cache-dir DIR | --no-cache] [--seed S] [--trunc PSI]

Prints one "name: value" line per result (or one JSON object with --json); exit status 2 with a
message on bad arguments, missing Inception weights or an unreadable checkpoint.  With --network (a
checkpoint, a run folder or 'latest'), images come from the network's EMA generator (uniformly
random classes if conditional) and, without --real, are compared with the network's own training
data (as NVIDIA's calc_metrics does).  Real images are resized to the generated images' resolution
(with a message) when they differ.
"""
import argparse
import json
import sys

import torch

from .evaluate import evaluate, make_generator_fn
from .real_data import load_network_for_metrics, open_real_images
from .resize import RESIZE_MODES
from .sources import open_images


def build_parser():
    p = argparse.ArgumentParser(prog="python -m ganops_models.metrics", description=__doc__.split("\n")[0])
    p.add_argument("--metrics", required=True, help="comma list: fid, kid, swd, fid50k_full, kid10k, swd16k, ...")
    p.add_argument("--real", help="folder or zip of real images (default with --network: the network's "
                                  "training data)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fake", help="folder or zip of generated images")
    src.add_argument("--network", help="checkpoint file, run folder (its newest valid checkpoint), 'latest' "
                                       "(the newest run under ./runs) or an NVIDIA StyleGAN2/3 .pkl whose G_ema "
                                       "generates the images")
    p.add_argument("--num", type=int, default=None, help="number of fake/generated images (default: per metric)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--inception", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--resize", default="tf", choices=RESIZE_MODES,
                   help="reference pipeline: tf (torch-fidelity/StyleGAN2-ADA), pytorch-fid, clean (clean-fid)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cuda or cpu (default: cuda if available)")
    p.add_argument("--batch", type=int, default=32, help="images per batch for generation and feature "
                                                         "extraction (default 32; lower it if memory runs out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images and of SWD's random "
                                                       "projections (default 0)")
    p.add_argument("--cache-dir", default=None, help="real-statistics cache (default $GANOPS_CACHE/metrics)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the statistics cache")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi for --network")
    return p


def network_generator_fn(net, trunc=1.0):
    """generator_fn of a loaded network's EMA generator (ganops checkpoint or NVIDIA pickle; random
    one-hot classes if conditional)."""
    device = next(net.G_ema.parameters()).device
    return make_generator_fn(lambda z, c: net.sample(z, c, truncation_psi=trunc),
                             lambda n, gen: torch.randn([n, net.z_dim], generator=gen), device, net.c_dim)


def main(argv=None):
    args = build_parser().parse_args(argv)
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    if args.fake is None:
        net = load_network_for_metrics(args.network, args.device, log)
        fake, resolution = network_generator_fn(net, args.trunc), net.resolution
        real = open_real_images(args.real, net, resolution, log)
    else:
        if args.real is None:
            raise ValueError("--real is needed with --fake (only --network knows its own training data)")
        fake = open_images(args.fake, "--fake")
        real = open_real_images(args.real, None, fake.resolution, log)
    cache_dir = False if args.no_cache else args.cache_dir
    results = evaluate(args.metrics, fake, real, device=args.device, num_gen=args.num,
                       inception_path=args.inception, cache_dir=cache_dir, batch_size=args.batch,
                       resize=args.resize, seed=args.seed, log=None if args.json else log)
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
