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
import json
import os
import sys

import torch

from ganops_models.tools.cli import ArgumentParser, run_main
from ganops_models.data import builtin as builtin_dataset
from ganops_models.data import ImageDataset, reconfigure
from ganops_models.errors import CheckpointError
from ganops_models.metrics.evaluate import evaluate, make_generator_fn
from ganops_models.metrics.resize import RESIZE_MODES
from ganops_models.metrics.sources import open_images
from ganops_models.network_loader import LoadedNetwork, load_network


def load_network_for_metrics(spec: str, device, log) -> LoadedNetwork:
    """The network of ``--network``; says which checkpoint a folder or 'latest' stands for."""
    try:
        net = load_network(spec, device)
    except CheckpointError as err:
        raise ValueError(f"--network: {err}") from None
    if os.path.abspath(net.path) != os.path.abspath(spec):
        log(f"network: {net.path}")
    return net


def _training_data(net: LoadedNetwork) -> ImageDataset:
    """The data the network was trained on, opened as its run opened it (mirroring included)."""
    if net.checkpoint is None:
        kind = "a safetensors network" if net.source == "safetensors" else "an NVIDIA pickle"
        raise ValueError(f"{net.path} is {kind}, which does not say where its training images are; "
                         f"pass --real with them")
    options = net.checkpoint["options"]
    path = options.get("data")
    if path is None:
        path = builtin_dataset.ensure()
    elif not os.path.exists(path):
        raise ValueError(f"the network was trained on {path!r}, which is not found from here; pass --real with "
                         f"the training images")
    data = open_images(path, "training data")
    return reconfigure(data, mirror=bool(options.get("mirror"))) if options.get("mirror") else data


def open_real_images(path, net, resolution, log) -> ImageDataset:
    """``--real`` (or, when None, ``net``'s training data) at ``resolution`` (H, W); a resize is reported."""
    real = _training_data(net) if path is None else open_images(path, "--real")
    if path is None:
        log(f"real images: the network's training data, {real.name} ({real.num_images} images)")
    if tuple(real.resolution) != tuple(resolution):
        (h, w), (rh, rw) = resolution, real.resolution
        log(f"real images are {rw}x{rh}, the generated ones {w}x{h}: resizing the real images to {w}x{h}")
        real = reconfigure(real, tuple(resolution), mirror=real.mirror)
    return real


def build_parser():
    p = ArgumentParser(prog="python -m ganops_models.metrics", description=__doc__.split("\n")[0])
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


def _run(args) -> int:
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



def main(argv=None) -> int:
    """Run the command; bad input prints ``error: ...`` and returns 2."""
    return run_main(_run, build_parser(), argv)
