"""Tiny StyleGAN2 / DCGAN checkpoints for the latent-space tool tests (written by the trainer's save function)."""
import torch

from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.training.distributed import DistInfo

from ganops_models.models.registry import get_recipe
from ganops_models.training.recipe import DataInfo

def save_checkpoint(path, model="stylegan2", resolution=(16, 16), label_dim=0, seed=0, **overrides):
    """A checkpoint of random (untrained) networks with a non-trivial w_avg and noise strengths."""
    if model == "stylegan2":
        options = dict(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                       aug="noaug")
    else:
        options = dict(batch=4, z_dim=8, precision="fp32", ngf=4, ndf=4)
    options.update(overrides)
    opts = get_recipe(model).Options(device="cpu", cond=label_dim > 0, resolution=tuple(resolution), **options)
    data = DataInfo(tuple(resolution), label_dim=label_dim, name="toy")
    torch.manual_seed(seed)
    recipe = get_recipe(model)(opts, data, torch.device("cpu"), DistInfo())
    if model == "stylegan2":
        with torch.no_grad():
            c = torch.eye(label_dim)[torch.arange(64) % label_dim] if label_dim else None
            recipe.G.mapping(torch.randn(64, recipe.G.z_dim), c, update_w_avg=True)
            for name, p in recipe.G.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(0.1)
            recipe.update_ema(1000)
    ckpt_lib.save_checkpoint(str(path), model=model, arch=recipe.arch_spec(), options=opts.to_dict(),
                             data={"resolution": list(resolution), "num_channels": 3, "label_dim": label_dim,
                                   "name": "toy"},
                             progress={"cur_nimg": 0, "step": 0, "tick": 0}, state=recipe.state_dict())
    return str(path)
