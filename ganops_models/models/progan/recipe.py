"""ProGAN recipe (``--model progan``, presets ``progan`` and the CPU-sized ``progan-lite``).

Progressive growing (:mod:`.progan_schedule`) from 4x4 to ``--resolution``: ``--lod-kimg`` kimg per
stable and per fade phase, the batch per resolution from ``--batch-per-res`` (``--batch`` elsewhere).
Reals are average-pooled to the phase resolution and, during a fade, blended as NVIDIA's
``process_reals``: ``lerp(upsample(avgpool(x)), x, alpha)``.

Losses (``--progan-loss``), with s = D scores and k = final / phase resolution:
  * ``wgan-gp`` (default, the paper's): D minimises ``s_fake - s_real + gamma * (||grad D(x_hat)|| / k - 1)^2
    + 0.001 * s_real^2`` (drift) with ``ganops.gradient_penalty``; G minimises ``-s_fake``.
  * ``logistic``: non-saturating, ``softplus(s_fake) + softplus(-s_real) + (gamma / 2) ||grad D(x_real)||^2 / k^2``
    (NVIDIA's D_logistic_simplegp R1) and ``softplus(-s_fake)`` for G.
The gradient is the one the official code penalises: with respect to images at the final resolution
(see :meth:`ProGANRecipe.penalty`); at 4x4 of a 1024 run the target is 256x looser than a penalty at the
phase resolution would make it.
Adam(lr 0.001, betas (0, 0.99), eps 1e-8), reset at every phase change (NVIDIA's
``reset_opt_for_new_lod``); G EMA with ``beta = 0.5 ** (--batch / (--ema * 1000))`` per step (the
presets give NVIDIA's 0.999 per step at every phase batch).

The phase (index, resolution, alpha, kimg within it) is a function of the images shown; the one
reached after the last step is stored in the state dict with the phase Adam's moments belong to; G and G_ema hold resolution and alpha as buffers, so sampling a checkpoint
(generate, metrics, video) shows the phase it was saved in, nearest-upsampled to the final size.

Deliberate differences from NVIDIA: the phase is recomputed every step (NVIDIA: every 4 minibatches);
D and G train at the phase resolution (see :mod:`ganops_models.models.progan.network`); one D step and one G
step per batch. ``--aug noaug`` only; unconditional only.
"""
import dataclasses
from typing import Dict

import torch
from torch.nn import functional as F

import ganops

from ganops_models.models.progan.network import ProGANDiscriminator, ProGANGenerator, downsample_avg, upsample_nearest
from ganops_models.errors import OptionsError
from ganops_models.models.progan.schedule import GrowthSchedule, Phase, parse_batch_per_res
from ganops_models.models.progan.options import ProGANOptions
from ganops_models.training.recipe import DataInfo
from ganops_models.training.simple_recipe import SimpleGANRecipe

START_RES = 4
# Version of D's block layout in the arch spec: checkpoints of the earlier layout (pooling after the
# second convolution's bias and activation) lack it and are refused rather than loaded into another function.
D_BLOCK = "conv-pool-bias-act"
DRIFT = 0.001


class ProGANRecipe(SimpleGANRecipe):
    name = "progan"
    default_cfg = {"cpu": "progan-lite", "cuda": "progan"}
    Options = ProGANOptions

    def __init__(self, opts, data: DataInfo, device, dist):
        super().__init__(opts, data, device, dist)
        resolution = tuple(opts.resolution or data.resolution)
        if resolution[0] != resolution[1]:
            raise OptionsError(f"--model progan needs square images, got {resolution[1]}x{resolution[0]}")
        try:
            self.schedule = GrowthSchedule(START_RES, resolution[0], float(opts.lod_kimg), opts.batch,
                                           parse_batch_per_res(opts.batch_per_res))
        except ValueError as e:
            raise OptionsError(str(e)) from None
        for res in range(0, self.schedule.num_levels + 1):
            b = self.schedule.batch_at(START_RES << res)
            if b % dist.world_size:
                raise OptionsError(f"the batch {b} at {START_RES << res}x{START_RES << res} is not divisible by "
                                   f"the number of processes ({dist.world_size}); change --batch-per-res/--batch")
        torch.manual_seed(opts.seed)
        self.G = ProGANGenerator(resolution[0], opts.z_dim, data.num_channels, opts.cbase, opts.cmax, START_RES)
        self.D = ProGANDiscriminator(resolution[0], data.num_channels, opts.cbase, opts.cmax, opts.mbstd_group,
                                     START_RES)
        self._finish_init(opts.glr, opts.dlr, betas=(0.0, 0.99))
        self.phase, self.optimizer_phase = self.schedule.at(0), 0

    # --- growth ---------------------------------------------------------------------------------
    def batch_size(self, cur_nimg: int) -> int:
        return self.schedule.at(cur_nimg).batch

    def tick_stats(self) -> Dict[str, float]:
        return {"resolution": self.phase.resolution, "alpha": self.phase.alpha}

    def _enter_phase(self, cur_nimg: int) -> Phase:
        """The phase of the step at ``cur_nimg``; Adam moments are reset when it is a new one
        (new layers: NVIDIA's reset_opt_for_new_lod)."""
        phase = self.schedule.at(cur_nimg)
        if phase.index != self.optimizer_phase:
            self.opt_G.state.clear()
            self.opt_D.state.clear()
            self.optimizer_phase = phase.index
        self.G.set_phase(phase.resolution, phase.alpha)
        return phase

    def _set_phase(self, phase: Phase) -> None:
        """The phase reached (shown by samples, stats and checkpoints)."""
        self.phase = phase
        for G in (self.G, self.G_ema):
            G.set_phase(phase.resolution, phase.alpha)

    def reals_at_phase(self, reals: torch.Tensor, phase: Phase) -> torch.Tensor:
        """Final-size reals -> the phase resolution, faded like NVIDIA's process_reals."""
        f = self.G.up_filter
        x = downsample_avg(reals, reals.shape[-1] // phase.resolution, f)
        if phase.fading:
            x = torch.lerp(upsample_nearest(downsample_avg(x, 2, f), 2, f), x, phase.alpha)
        return x

    # --- training -------------------------------------------------------------------------------
    # G reads the phase's alpha from a Python attribute (set_phase): compiled, it would recompile at
    # every step of a fade; so G runs eager and D's phases (scores, losses, penalty) are compiled.
    compiled_phases = ("d_loss", "g_loss")

    def d_loss(self, reals, fakes, resolution: int, alpha: float):
        """(D loss, penalty, D(reals), D(fakes)) at the phase's resolution and alpha (see the module docstring)."""
        with self.autocast():
            s_real = self.D(reals, alpha).float()
            s_fake = self.D(fakes, alpha).float()
        penalty = self._penalty(reals, fakes, resolution, alpha)
        if self.opts.progan_loss == "wgan-gp":
            loss_d = (s_fake - s_real).mean() + penalty + DRIFT * s_real.square().mean()
        else:
            loss_d = (F.softplus(s_fake) + F.softplus(-s_real)).mean() + penalty
        return loss_d, penalty, s_real, s_fake

    def g_loss(self, fakes, alpha):
        with self.autocast():
            s_gen = self.D(fakes, alpha).float()
        return -s_gen.mean() if self.opts.progan_loss == "wgan-gp" else F.softplus(-s_gen).mean()

    def train_step(self, reals, labels, step: int, cur_nimg: int) -> Dict[str, torch.Tensor]:
        phase = self._enter_phase(cur_nimg)
        reals = self.reals_at_phase(reals.to(self.device), phase)
        n = reals.shape[0]
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with self.autocast():
            fakes = self.G(torch.randn([n, self.G.z_dim], device=self.device), final_size=False)
        loss_d, penalty, s_real, s_fake = self.d_loss(reals, fakes, phase.resolution, phase.alpha)
        self.step("D", loss_d)
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        with self.autocast():
            fakes = self.G(torch.randn([n, self.G.z_dim], device=self.device), final_size=False)
        loss_g = self.g_loss(fakes, phase.alpha)
        self.step("G", loss_g)
        self.G.requires_grad_(False)
        self.update_ema(cur_nimg)
        self._set_phase(self.schedule.at(cur_nimg + phase.batch))
        return {"loss/G": loss_g.detach(), "loss/D": loss_d.detach(), "loss/penalty": penalty.detach(),
                "scores/real": s_real.detach().mean(), "scores/fake": s_fake.detach().mean()}

    def penalty(self, reals: torch.Tensor, fakes: torch.Tensor, phase: Phase, alpha=None) -> torch.Tensor:
        """D's gradient penalty (mean over the batch) at the scale of the official code, which penalises the
        gradient with respect to images at the *final* resolution (phase images nearest-upsampled, which
        D average-pools back): that gradient is the phase-resolution one divided by k = final / phase
        resolution, so D's scores are divided by k here. wgan-gp: gamma * (||grad||/k - 1)^2 on random
        mixes of reals and fakes (``alpha``: the mixing factors, random when None); logistic: (gamma / 2)
        * ||grad||^2 / k^2 on reals (NVIDIA's simple-gp R1)."""
        return self._penalty(reals, fakes, phase.resolution, phase.alpha, alpha)

    def _penalty(self, reals, fakes, resolution: int, alpha: float, mix=None) -> torch.Tensor:
        scale = resolution / self.G.resolution
        d_of = lambda x: self.D(x, alpha).float() * scale   # noqa: E731
        if self.opts.progan_loss == "wgan-gp":
            return ganops.gradient_penalty(d_of, reals, fakes.to(reals.dtype), weight=self.opts.gamma, alpha=mix,
                                           reduce="mean")
        x = reals.detach().requires_grad_(True)
        return ganops.r1_penalty(x, d_of(x), self.opts.gamma, reduce="mean")

    # --- contract -------------------------------------------------------------------------------
    def arch_spec(self) -> dict:
        return {"resolution": self.G.resolution, "img_channels": self.G.img_channels, "z_dim": self.G.z_dim,
                "cbase": self.opts.cbase, "cmax": self.opts.cmax, "mbstd_group": self.opts.mbstd_group,
                "start_res": START_RES, "d_block": D_BLOCK}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "phase": dataclasses.asdict(self.phase),
                "optimizer_phase": self.optimizer_phase}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._set_phase(Phase(**state["phase"]))
        self.optimizer_phase = int(state["optimizer_phase"])
