"""FastGAN recipe (``--model fastgan``, presets fastgan-256, fastgan-1024, fastgan-lite), a port of
the official trainer (odegeasslbc/FastGAN-pytorch ``train.py``).

Per step, with DiffAugment ``T`` (default policy ``color,translation``, as official) applied to reals
and to both fake outputs, ``u ~ U[0, 1)`` drawn per logit (the randomised hinge margin):
  * D: ``mean(relu(0.8 + 0.2u - D(T(x)))) + mean(relu(0.8 + 0.2u + D(T(G(z)))))``
        ``+ R(rec_big, T(x)_S) + R(rec_small, T(x)_S) + R(rec_part, quadrant_part(T(x))_S)``
        (reals only; ``_S`` = resized to the auxiliary resolution, part ~ U{0..3} drawn on the host; ``R`` is the
        batch SUM of a per-image distance, LPIPS as official, see ``lpips.reconstruction_loss``)
        ``+ gp * ganops.gradient_penalty(D, T(x), T(G(z)))`` when ``--gp > 0``;
  * G: ``-mean(D(T(G(z))))`` on the same fakes after D's update;
  * Adam(lr 2e-4, betas 0.5, 0.999) for both, G EMA with beta 0.999 per step (no ramp-up);
  * networks and init as official (``networks.fastgan``); z ~ N(0, I), z_dim 256.
Defaults of new runs as official: ``--mirror`` on (x-flips), fp32 (``--precision fp16|bf16`` opt-in),
batch 8, 50k steps (``kimg 400``). ``--recon mse|lpips``: LPIPS needs ``--lpips FILE[,FILE]`` (VGG16 +
linear heads, see ``ganops_models.nn.lpips``); without it a warning says so and MSE is used.

Deliberate differences from the official code:
  * resolutions 64 and 128 (official: 256, 512, 1024; rules in ``networks.fastgan``), any channel
    count, ``--antialias`` (off by default) and ``--gp`` (0 by default) are additions;
  * the reals' auxiliary image and the reconstruction targets are area-downsampled (box filter); the
    official code uses nearest-neighbour ``F.interpolate``;
  * a fake's full-size and auxiliary images get the same DiffAugment draws (official: independent
    draws). D's two heads see disjoint inputs, so each head's loss has the same distribution;
  * ``--mirror`` adds x-flipped copies of the dataset (NVIDIA's convention) where the official loader
    flips each sample with probability 0.5: the same distribution of training images;
  * spectral norm is ``torch.nn.utils.parametrizations.spectral_norm`` (its power iteration starts
    converged on the initial weights) instead of the deprecated ``torch.nn.utils.spectral_norm``
    (random u at the start); both do one power iteration per training forward;
  * samples (grids, generate, metrics) of G_ema normalise with each batch's statistics by default, as
    the official ``eval.py`` (its ``net_ig.eval()`` is commented out; it samples batches of 16) and the
    official trainer's previews (batches of 8) do: an image then depends on the other latents of its
    batch (``generate`` draws batches of 16). ``--sample-bn running`` samples with the running statistics
    instead (eval mode, a function of the latent alone). The official eval.py samples ``G``, not its EMA;
    ganops samples G_ema as its trainer's previews do. Spectral norm does no power iteration while
    sampling (the official train mode does one per batch, a change of the weights below 1e-4);
  * gradients are nan_to_num'ed (NaN -> 0) and averaged over ranks before each Adam step;
  * ``--recon mse`` (no LPIPS weights, and the fastgan-lite preset) is an addition, summed over the
    batch like LPIPS;
  * seeds do not reproduce the official runs' images (other RNG order); the official trainer resizes
    images on the fly, ganops reads them at the dataset's resolution (``--resolution`` / dataset_tool).
"""
import random
import warnings
from typing import Dict

import torch
from torch.nn import functional as F

import ganops

from ganops_models.augment.diffaugment import DiffAugment
from ganops_models.nn.lpips import load_lpips, reconstruction_loss
from ganops_models.models.fastgan.network import FastGANDiscriminator, FastGANGenerator, crop_quadrant, resize_down
from ganops_models.errors import OptionsError
from ganops_models.models.fastgan.options import FastGANOptions
from ganops_models.training.recipe import DataInfo
from ganops_models.training.simple_recipe import SimpleGANRecipe

# Version of the network layout, in the arch spec: checkpoints of the earlier layout (G's channel table
# in D, double-width decoders, output biases) lack it and are refused rather than loaded wrongly.
LAYOUT = "official-FastGAN-pytorch"




class FastGANRecipe(SimpleGANRecipe):
    name = "fastgan"
    default_cfg = {"cpu": "fastgan-lite", "cuda": "fastgan-256"}
    Options = FastGANOptions

    @property
    def sample_batch_statistics(self) -> bool:
        return self.opts.sample_bn == "batch"

    def __init__(self, opts, data: DataInfo, device, dist):
        super().__init__(opts, data, device, dist)
        resolution = tuple(opts.resolution or data.resolution)
        if resolution[0] != resolution[1]:
            raise OptionsError(f"--model fastgan needs square images, got {resolution[1]}x{resolution[0]}")
        if opts.gp > 0 and not hasattr(ganops, "gradient_penalty"):
            raise OptionsError("--gp needs ganops.gradient_penalty, which this ganops build does not have")
        torch.manual_seed(opts.seed)
        try:
            self.G = FastGANGenerator(resolution[0], opts.z_dim, opts.ngf, data.num_channels, opts.antialias)
            self.D = FastGANDiscriminator(resolution[0], opts.ndf, data.num_channels, opts.antialias)
        except ValueError as e:
            raise OptionsError(str(e)) from None
        self._finish_init(opts.glr, opts.dlr)
        self.augment = DiffAugment(opts.diffaug if opts.aug == "diffaug" else "")
        self.recon, self.recon_mode = reconstruction_loss("mse"), "mse"
        if opts.recon == "lpips":
            if opts.lpips:
                self.recon, self.recon_mode = reconstruction_loss("lpips", load_lpips(opts.lpips, device)), "lpips"
            else:
                warnings.warn("--recon lpips needs VGG16 + LPIPS weights from a local file (--lpips FILE); "
                              "none given, so D's reconstruction loss is MSE")

    def arch_spec(self) -> dict:
        opts = self.opts
        return {"layout": LAYOUT, "resolution": self.G.resolution, "img_channels": self.G.img_channels,
                "z_dim": self.G.z_dim, "ngf": opts.ngf, "ndf": opts.ndf, "antialias": bool(opts.antialias)}

    def quadrant(self, step: int) -> int:
        """The quadrant D reconstructs at ``step`` (0..3, uniform): drawn on the host from (seed, step),
        so the step never reads a device value and a resumed run draws the same ones."""
        return random.Random(f"{self.opts.seed}/{step}").randrange(4)

    compiled_phases = ("generate", "d_loss", "g_loss")

    def generate(self, z):
        """T(G(z)): the augmented full-size and auxiliary fakes (G's graph kept for the G step)."""
        with self.autocast():
            return self.augment(list(self.G(z)))

    def d_loss(self, reals, fakes_aug, part: int):
        """(D loss, stats) on T(reals) and the detached fakes; ``part``: the quadrant to reconstruct."""
        with self.autocast():
            reals_aug = self.augment(reals)
            s = self.D.aux_resolution
            logits_real, (rec_big, rec_small, rec_part) = self.D(reals_aug, part=part)
            target = resize_down(reals_aug, s)
            loss_real = F.relu(0.8 + 0.2 * torch.rand_like(logits_real) - logits_real).mean()
            loss_rec = (self.recon(rec_big.float(), target.float()) + self.recon(rec_small.float(), target.float())
                        + self.recon(rec_part.float(), resize_down(crop_quadrant(reals_aug, part), s).float()))
            logits_fake = self.D(*[f.detach() for f in fakes_aug])
            loss_fake = F.relu(0.8 + 0.2 * torch.rand_like(logits_fake) + logits_fake).mean()
            loss = loss_real + loss_fake + loss_rec
            stats = {"loss/D_real": loss_real.detach(), "loss/D_fake": loss_fake.detach(),
                     "loss/recon": loss_rec.detach(), "scores/real": logits_real.detach().float().mean(),
                     "scores/fake": logits_fake.detach().float().mean()}
            if self.opts.gp > 0:
                gp = ganops.gradient_penalty(self.D, reals_aug.detach(), fakes_aug[0].detach()).mean()
                stats["loss/gp"] = gp.detach()
                loss = loss + self.opts.gp * gp
        return loss, stats

    def g_loss(self, fakes_aug):
        with self.autocast():
            return -self.D(*fakes_aug).float().mean()

    def train_step(self, reals, labels, step: int, cur_nimg: int) -> Dict[str, torch.Tensor]:
        reals = reals.to(self.device)
        z = torch.randn([reals.shape[0], self.G.z_dim], device=self.device)
        self.G.requires_grad_(True)
        fakes_aug = self.generate(z)
        self.D.requires_grad_(True)
        loss_d, stats = self.d_loss(reals, fakes_aug, self.quadrant(step))
        self.step("D", loss_d)
        self.D.requires_grad_(False)
        loss_g = self.g_loss(fakes_aug)
        self.step("G", loss_g)
        self.G.requires_grad_(False)
        self.update_ema(cur_nimg)
        stats.update({"loss/D": loss_d.detach(), "loss/G": loss_g.detach()})
        return stats
