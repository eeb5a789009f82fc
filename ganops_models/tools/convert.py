"""Convert a network: an NVIDIA pickle into a ganops checkpoint, or any network into safetensors.

``python -m ganops_models.convert --network X.pkl --out Y.pt`` reads the pickle safely (nothing in it
is run; see :mod:`ganops_models.formats.safe_pickle`) and writes a ``checkpoint-*.pt``-format file holding its
G, D and G_ema (and the ADA p of its augment pipe) with training options that rebuild the same
architecture; the other options are ganops' defaults. The result works wherever a checkpoint does
(``generate --network Y.pt``, ``metrics``, ``train --resume Y.pt``, which continues it at kimg 0).

``python -m ganops_models.convert --network X --out Y.safetensors`` takes anything ``--network`` takes
(a checkpoint, a run folder, ``latest``, an NVIDIA StyleGAN2/3 pickle, a safetensors network) of any
model and writes the parameters and buffers of its G, D and G_ema as safetensors, with the model's
name, its options (the networks' constructor arguments derive from them) and data sizes as JSON
metadata: no pickle anywhere (the format: :mod:`ganops_models.network_loader`). The options that
name local paths or services (:data:`LOCAL_OPTIONS`) are left out. Optimiser state and training
progress are not written: the file is for sampling, metrics and export, not for resuming.
"""
import os

import torch

from ganops_models.files import regular_file
from ganops_models.tools.cli import ArgumentParser, run_command
from ganops_models.formats import nvidia
from ganops_models.formats import safetensors as safetensors_file
from ganops_models.network_loader import LoadedNetwork, load_network, save_safetensors
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.nvidia import stylegan2_discriminator_options
from ganops_models.models.registry import RECIPES
from ganops_models.training.transfer import init_from_network


def checkpoint_recipe(net: LoadedNetwork):
    """A CPU recipe of the pickle's model (StyleGAN2 or StyleGAN3) holding ``net``'s weights, with options
    that rebuild its architecture."""
    arch = nvidia.train_options(net.info["nvidia_kwargs"], net.kind)
    d_group = stylegan2_discriminator_options(net.info["nvidia_kwargs"]["D"])["mbstd_group_size"]
    recipe_cls = RECIPES[net.kind]
    opts = recipe_cls.Options(**{"mbstd_group": d_group, **arch}, device="cpu",
                              precision="fp16" if arch["num_fp16_res"] > 0 else "fp32", p=net.augment_p,
                              resume=net.path)
    tsk = net.info.get("training_set_kwargs") or {}
    name = os.path.splitext(os.path.basename(str(tsk.get("path") or net.path)))[0]
    data = DataInfo(resolution=tuple(net.resolution), num_channels=net.img_channels, label_dim=net.c_dim, name=name)
    recipe = recipe_cls(opts, data, torch.device("cpu"), DistInfo())
    init_from_network(recipe, net)
    return recipe


# Options that name this machine's files or services: not written into a safetensors network.
LOCAL_OPTIONS = ("data", "outdir", "resume", "inception", "desc", "wandb", "mlflow")


def convert_safetensors(network: str, out: str) -> LoadedNetwork:
    """Write the safetensors network of ``network`` (anything :func:`load_network` takes) to ``out``
    (atomically); returns the loaded network."""
    net = load_network(network, "cpu")
    recipe = net.recipe if net.recipe is not None else checkpoint_recipe(net)
    options = net.info.get("options") or recipe.opts.to_dict()
    save_safetensors(out, recipe, net.kind, {k: v for k, v in options.items() if k not in LOCAL_OPTIONS},
                     net.augment_p)
    return net


def convert(network: str, out: str) -> LoadedNetwork:
    """Write the ganops checkpoint of the pickle ``network`` to ``out`` (atomically); returns the pickle's networks."""
    try:
        regular_file(network, "--network")
    except (FileNotFoundError, ValueError) as e:
        raise ckpt_lib.CheckpointError(f"{e} (give the path of a .pkl file)") from None
    if not nvidia.is_pickle(network):
        raise ckpt_lib.CheckpointError(f"--network {network!r} is not a pickle (a ganops checkpoint needs no "
                                       f"conversion)")
    net = load_network(network, "cpu")
    recipe = checkpoint_recipe(net)
    d = recipe.data
    ckpt_lib.save_checkpoint(out, model="stylegan2", arch=recipe.arch_spec(), options=recipe.opts.to_dict(),
                             data={"resolution": list(d.resolution), "num_channels": d.num_channels,
                                   "label_dim": d.label_dim, "name": d.name},
                             progress={"cur_nimg": 0, "step": 0, "tick": 0}, state=recipe.state_dict())
    return net


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m ganops_models.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="for .pt: an NVIDIA StyleGAN2-ADA (PyTorch) or StyleGAN2 "
                   "(TensorFlow) .pkl; for .safetensors: also a checkpoint, run folder, 'latest' or .safetensors")
    p.add_argument("--out", required=True, help="file to write: a ganops checkpoint (.pt) or a safetensors network "
                   "(.safetensors: weights of G, D, G_ema and JSON metadata, no pickle)")
    args = p.parse_args(argv)

    def run() -> int:
        to_safetensors = args.out.lower().endswith(safetensors_file.SUFFIX)
        net = (convert_safetensors if to_safetensors else convert)(args.network, args.out)
        print(f"wrote {args.out} from {net.describe()}")
        return 0
    return run_command(run)
