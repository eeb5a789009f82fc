"""A training step never synchronises with the host (issue #33 item 3): no ``_local_scalar_dense``
(what ``.item()``, ``float()``, ``bool()`` and ``.tolist()`` run) and no device-to-CPU copy in the
steps after a warm-up, for every model, ADA on (p fixed and adapting) or off.

On the CPU every tensor is a host tensor, so only the scalar reads can be seen there; on a GPU the
same test also catches device-to-CPU copies."""
import pytest
import torch

from ganops_models.augment import AugmentPipe
from ganops_models.augment.ada_controller import AdaController
from ganops_models.models.registry import get_recipe
from ganops_models.tools.train import new_run_options
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from helpers import count_host_syncs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# (preset, extra options, resolution). The counted step (16) runs the lazy regularisers (intervals
# dividing 16) and, with ada_interval 1, ADA's adjustment of p.
CASES = {
    "stylegan2-ada-adapting": ("tiny", {"aug": "ada", "p": 0.2, "ada_interval": 1}, 16),
    "stylegan2-fixed-p": ("tiny", {"aug": "fixed", "p": 0.3}, 16),
    "stylegan2-noaug": ("tiny", {"aug": "noaug"}, 16),
    "stylegan3-t": ("stylegan3-t", {"cbase": 128, "cmax": 4, "aug": "ada", "p": 0.2, "ada_interval": 1}, 32),
    "fastgan-lite": ("fastgan-lite", {}, 64),
    "dcgan-lite": ("dcgan-lite", {}, 32),
    "progan-lite": ("progan-lite", {}, 32),
}


def _recipe(cfg: str, extra: dict, res: int, device: str):
    opts = new_run_options({"cfg": cfg, "resolution": str(res), "batch": 4, **extra}, (res, res), 1, device).options
    return get_recipe(opts.model)(opts, DataInfo((res, res)), torch.device(device), DistInfo())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_steps_do_not_sync(case, device):
    cfg, extra, res = CASES[case]
    recipe = _recipe(cfg, extra, res, device)
    torch.manual_seed(1)
    reals = (torch.rand(4, 3, res, res) * 2 - 1).to(device)
    labels = torch.zeros(4, 0, device=device)
    start = 0
    if cfg == "progan-lite":                       # in the middle of a fade-in
        start = next(n for n in range(0, 10 ** 7, 100) if recipe.schedule.at(n).fading and recipe.schedule.at(n).resolution > 4)
    recipe.train_step(reals, labels, 0, start)     # warm-up: lazily built state may read the host once
    assert count_host_syncs(lambda: recipe.train_step(reals, labels, 16, start + 4)) == {}, case
    if cfg == "progan-lite":
        assert recipe.phase.fading, "the counted steps must include a fade-in"
    if extra.get("aug") == "ada":
        assert recipe.augment.controller.rt is not None, "ADA must have adjusted p in the counted steps"
        assert recipe.augment_p != extra["p"]


@pytest.mark.parametrize("device", DEVICES)
def test_ada_pipe_and_controller_do_not_sync(device):
    """The pipeline at p = 0 and p > 0 and an adjustment of p stay on the device."""
    pipe = AugmentPipe("bgcfnc", p=0.0).to(device)
    ctl = AdaController(target=0.6, ada_kimg=1, batch_size=8, interval=1)
    x = torch.rand(8, 3, 16, 16, device=device) * 2 - 1

    def run():
        assert pipe(x).shape == x.shape
        ctl.accumulate(torch.ones(8, device=device))
        ctl.step(pipe)
        assert pipe(x).shape == x.shape

    assert count_host_syncs(run) == {}
    assert float(pipe.p) == pytest.approx(8 / 1000) and ctl.rt == 1.0   # read once, after the steps


def test_the_counter_sees_host_reads():
    """The check can fail: each kind of host read is counted."""
    t = torch.ones(3)
    assert count_host_syncs(lambda: float(t.sum())) == {"aten._local_scalar_dense": 1}
    assert count_host_syncs(lambda: t[0].item()) == {"aten._local_scalar_dense": 1}
    assert count_host_syncs(lambda: bool((t > 0).all())) == {"aten._local_scalar_dense": 1}


def test_progan_host_phase_follows_loaded_buffers():
    """ProGAN's G picks layers from a host copy of its phase buffers; loading a state dict refreshes it."""
    from ganops_models.models.progan.network import ProGANGenerator
    src, dst = ProGANGenerator(16, z_dim=8, cbase=64, cmax=8), ProGANGenerator(16, z_dim=8, cbase=64, cmax=8)
    src.set_phase(16, 0.25)
    dst.load_state_dict(src.state_dict())
    assert dst.phase == (16, 0.25)
    z = torch.randn(2, 8)
    assert count_host_syncs(lambda: dst(z, final_size=False)) == {}
    assert dst(z, final_size=False).shape[-1] == 16
