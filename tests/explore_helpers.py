"""Tiny networks for the explore tests: a StyleGAN2 run folder with two ganops checkpoints and an
NVIDIA-format StyleGAN3 pickle (records from tests/nvidia_pickles.py), and a helper that runs the
``generate`` command a capture names."""
import os

import torch

import nvidia_pickles as nv
from latent_helpers import save_checkpoint

from ganops_models.models.stylegan2.network import Discriminator
from ganops_models.models.stylegan3.network import Generator
from ganops_models.tools import generate

SG3_TINY = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8, num_layers=4, num_critical=1,
                margin_size=2)


def stylegan2_run(tmp_path, resolution=(16, 16)):
    """runs/00000-toy with checkpoint-000000.000.pt and checkpoint-000004.000.pt; the newest's path. (The helper seeds
    every checkpoint alike, so the older one gets a 3-layer mapping network to draw other pictures.)"""
    run = tmp_path / "runs" / "00000-toy"
    run.mkdir(parents=True)
    save_checkpoint(run / "checkpoint-000000.000.pt", resolution=resolution, map=3)
    return save_checkpoint(run / "checkpoint-000004.000.pt", resolution=resolution)


def stylegan3_pickle(tmp_path):
    """An NVIDIA StyleGAN3-T snapshot of a tiny random generator (non-trivial w_avg and magnitude EMAs)."""
    gens = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        G = Generator(**SG3_TINY, c_dim=0, precision="fp32")
        with torch.no_grad():
            for name, p in G.named_parameters():
                p.add_(torch.randn_like(p) * (0.05 if name.startswith("synthesis.input.affine") else 0.3))
            G.mapping.w_avg.normal_()
            for name in G.synthesis.layer_names:
                getattr(G.synthesis, name).magnitude_ema.uniform_(0.5, 2.0)
        gens.append(G.eval())
    D = Discriminator(c_dim=0, resolution=16, channel_base=64, channel_max=8, precision="fp32").eval()
    kwargs = nv.EasyDict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                         mapping_kwargs=nv.EasyDict(num_layers=2), channel_base=64, channel_max=8, num_layers=4,
                         num_critical=1, margin_size=2, magnitude_ema_beta=0.5 ** (32 / 20000))
    path = tmp_path / "network-snapshot-000200.pkl"
    nv.write_snapshot(path, gens[0], D, gens[1], kwargs, nv.d_kwargs(D, 64, 8), tmp_path / "marker",
                      src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    return str(path)


def generated_png(capture: dict, outdir) -> bytes:
    """Run the capture's ``generate_command`` (in-process, ``--outdir outdir``) and return the bytes of the
    file it names (``generate_file``)."""
    command = capture["generate_command"]
    assert command[:3] == ["python", "-m", "ganops_models.generate"] and command[-2] == "--outdir"
    assert generate.main(command[3:-1] + [str(outdir)]) == 0
    with open(os.path.join(outdir, capture["generate_file"]), "rb") as f:
        return f.read()
