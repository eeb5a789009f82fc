"""Issue #30: details that change a training run against the reference trainers."""
import pytest
import torch

from ganops_models.models.registry import get_recipe
from ganops_models.tools.train import new_run_options
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo

CPU = torch.device("cpu")


def _recipe(given, resolution=16):
    opts = new_run_options({"resolution": str(resolution), "device": "cpu", **given}, (resolution, resolution), 1,
                           "cpu").options
    return get_recipe(opts.model)(opts, DataInfo((resolution, resolution)), CPU, DistInfo())


def _adam(opt):
    group = opt.param_groups[0]
    return group["lr"], group["betas"]


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_g_adam_has_no_lazy_correction(cfg):
    """NVIDIA stylegan3 train.py sets G_reg_interval only for its stylegan2 config: with pl_weight 0 G's
    Adam is lr 0.0025, betas (0, 0.99); D keeps R1 every 16 steps: lr 0.002 * 16/17, beta2 0.99 ** (16/17)."""
    recipe = _recipe({"cfg": cfg, "cbase": 128, "cmax": 4, "batch": 4})
    lr, betas = _adam(recipe.opt_G)
    assert lr == pytest.approx(0.0025) and betas == pytest.approx((0.0, 0.99))
    lr, betas = _adam(recipe.opt_D)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert [p[0] for p in recipe.phases] == ["Gmain", "Dmain", "Dreg"]


def test_stylegan2_g_adam_keeps_its_correction_when_path_length_runs():
    recipe = _recipe({"cfg": "tiny", "pl_weight": 2.0, "gamma": 0.0, "batch": 4})
    lr, betas = _adam(recipe.opt_G)
    assert lr == pytest.approx(0.0025 * 4 / 5) and betas == pytest.approx((0.0, 0.99 ** 0.8))
    lr, betas = _adam(recipe.opt_D)                      # gamma 0: no R1, so no correction
    assert lr == pytest.approx(0.0025) and betas == pytest.approx((0.0, 0.99))
    assert [p[0] for p in recipe.phases] == ["Gmain", "Greg", "Dmain"]
