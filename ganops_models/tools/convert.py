"""Convert an NVIDIA StyleGAN2 network pickle into a ganops checkpoint (so the pickle is parsed once).

``python -m ganops_models.convert --network X.pkl --out Y.pt`` reads the pickle safely (nothing in it
is run; see :mod:`ganops_models.formats.safe_pickle`) and writes a ``checkpoint-*.pt``-format file holding its
G, D and G_ema (and the ADA p of its augment pipe) with training options that rebuild the same
architecture; the other options are ganops' defaults. The result works wherever a checkpoint does
(``generate --network Y.pt``, ``metrics``, ``train --resume Y.pt``, which continues it at kimg 0).
"""
import os

import torch

from ganops_models.files import regular_file
from ganops_models.tools.cli import ArgumentParser, run_command
from ganops_models.formats import nvidia
from ganops_models.network_loader import LoadedNetwork, load_network
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.nvidia import stylegan2_discriminator_options
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe
from ganops_models.training.transfer import init_from_network


def checkpoint_recipe(net: LoadedNetwork) -> StyleGAN2Recipe:
    """A CPU StyleGAN2 recipe holding ``net``'s weights, with options that rebuild its architecture."""
    arch = nvidia.train_options(net.info["nvidia_kwargs"])
    d_group = stylegan2_discriminator_options(net.info["nvidia_kwargs"]["D"])["mbstd_group_size"]
    opts = StyleGAN2Options(**arch, device="cpu", precision="fp16" if arch["num_fp16_res"] > 0 else "fp32",
                        mbstd_group=d_group, p=net.augment_p, resume=net.path)
    tsk = net.info.get("training_set_kwargs") or {}
    name = os.path.splitext(os.path.basename(str(tsk.get("path") or net.path)))[0]
    data = DataInfo(resolution=tuple(net.resolution), num_channels=net.img_channels, label_dim=net.c_dim, name=name)
    recipe = StyleGAN2Recipe(opts, data, torch.device("cpu"), DistInfo())
    init_from_network(recipe, net)
    return recipe


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
    p.add_argument("--network", required=True, help="NVIDIA StyleGAN2-ADA (PyTorch) or StyleGAN2 (TensorFlow) .pkl")
    p.add_argument("--out", required=True, help="ganops checkpoint to write (.pt)")
    args = p.parse_args(argv)

    def run() -> int:
        net = convert(args.network, args.out)
        print(f"wrote {args.out} from {net.describe()}")
        return 0
    return run_command(run)
