"""DCGAN recipe (``--model dcgan``, presets dcgan-64 and the CPU-sized dcgan-lite).

Binary cross-entropy on logits: D minimises ``BCE(D(T(x)), t_real) + BCE(D(T(G(z))), t_fake)`` with
``t_real = 1 - label_smoothing`` (one-sided smoothing), ``t_fake = 0``, and with probability
``label_noise`` per sample the two targets swapped; G minimises ``BCE(D(T(G(z))), 1)`` (the
non-saturating loss). Adam(lr 2e-4, betas 0.5, 0.999). ``T`` is the trainer's ``--aug``
(noaug by default; diffaug, ada and fixed work as for StyleGAN2).
"""
from typing import Dict

import torch
from torch.nn import functional as F

from ganops_models.models.dcgan.network import DCGANDiscriminator, DCGANGenerator
from ganops_models.training import augmentation
from ganops_models.errors import OptionsError
from ganops_models.models.dcgan.options import DCGANOptions
from ganops_models.training.recipe import DataInfo
from ganops_models.training.simple_recipe import SimpleGANRecipe


class DCGANRecipe(SimpleGANRecipe):
    name = "dcgan"
    default_cfg = {"cpu": "dcgan-lite", "cuda": "dcgan-64"}
    Options = DCGANOptions

    def __init__(self, opts, data: DataInfo, device, dist):
        super().__init__(opts, data, device, dist)
        resolution = tuple(opts.resolution or data.resolution)
        if resolution[0] != resolution[1]:
            raise OptionsError(f"--model dcgan needs square images, got {resolution[1]}x{resolution[0]}")
        torch.manual_seed(opts.seed)
        try:
            self.G = DCGANGenerator(resolution[0], opts.z_dim, opts.ngf, data.num_channels)
            self.D = DCGANDiscriminator(resolution[0], opts.ndf, data.num_channels)
        except ValueError as e:
            raise OptionsError(str(e)) from None
        self._finish_init(opts.glr, opts.dlr)
        self.augment = augmentation.build(opts, device)

    def modules(self):
        mods = super().modules()
        if self.augment.pipe is not None:
            mods["augment_pipe"] = self.augment.pipe
        return mods

    def arch_spec(self) -> dict:
        return {"resolution": self.G.resolution, "img_channels": self.G.img_channels, "z_dim": self.G.z_dim,
                "ngf": self.opts.ngf, "ndf": self.opts.ndf}

    def targets(self, n: int):
        """(t_real, t_fake) [n] float targets with smoothing and per-sample swaps."""
        t_real = torch.full([n], 1.0 - self.opts.label_smoothing, device=self.device)
        t_fake = torch.zeros([n], device=self.device)
        if self.opts.label_noise > 0:
            swap = torch.rand([n], device=self.device) < self.opts.label_noise
            t_real, t_fake = torch.where(swap, t_fake, t_real), torch.where(swap, t_real, t_fake)
        return t_real, t_fake

    def _aug(self, images):
        return images if self.augment.pipe is None else self.augment.pipe(images)

    compiled_phases = ("generate", "d_loss", "g_loss")

    def generate(self, z):
        """G(z) (G's graph is kept for the G step after D's)."""
        with self.autocast():
            return self.G(z)

    def d_loss(self, reals, fakes, t_real, t_fake):
        """(D loss, D(T(reals)), D(T(fakes))) on detached fakes."""
        with self.autocast():
            logits_real = self.D(self._aug(reals)).float()
            logits_fake = self.D(self._aug(fakes.detach())).float()
            loss_d = (F.binary_cross_entropy_with_logits(logits_real, t_real)
                      + F.binary_cross_entropy_with_logits(logits_fake, t_fake))
        return loss_d, logits_real, logits_fake

    def g_loss(self, fakes):
        with self.autocast():
            logits_gen = self.D(self._aug(fakes)).float()
            return F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))

    def train_step(self, reals, labels, step: int, cur_nimg: int) -> Dict[str, torch.Tensor]:
        reals = reals.to(self.device)
        n = reals.shape[0]
        z = torch.randn([n, self.G.z_dim], device=self.device)
        t_real, t_fake = self.targets(n)
        self.G.requires_grad_(True)
        self.D.requires_grad_(True)
        fakes = self.generate(z)
        loss_d, logits_real, logits_fake = self.d_loss(reals, fakes, t_real, t_fake)
        self.augment.accumulate(logits_real.detach())
        self.step("D", loss_d)
        self.D.requires_grad_(False)
        loss_g = self.g_loss(fakes)
        self.step("G", loss_g)
        self.G.requires_grad_(False)
        self.update_ema(cur_nimg)
        self.augment.update(step, self.opts.batch)
        stats = {"loss/D": loss_d.detach(), "loss/G": loss_g.detach(),
                 "scores/real": logits_real.detach().mean(), "scores/fake": logits_fake.detach().mean()}
        if self.augment.pipe is not None and hasattr(self.augment.pipe, "p"):
            stats["augment_p"] = self.augment.pipe.p.detach().clone()
        return stats

    @property
    def augment_p(self):
        pipe = self.augment.pipe
        return float(pipe.p) if pipe is not None and hasattr(pipe, "p") else None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "augment": self.augment.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.augment.load_state_dict(state["augment"])
