"""StyleGAN2-ADA losses: non-saturating logistic loss, lazy R1 and lazy path-length regularisation.

Phases (one optimiser step each; the reg phases run every ``interval`` minibatches with their loss
multiplied by ``gain = interval``, the lazy-regularisation scheme of StyleGAN2):

  Gmain: softplus(-D(G(z)))                                          -> G
  Greg:  pl_weight * (|J_w^T y| - a)^2, y ~ N(0, I)/sqrt(HW), a = EMA   -> G
  Dmain: softplus(D(G(z))) + softplus(-D(x))                         -> D
  Dreg:  (gamma / 2) * |grad_x D(x)|^2                                -> D

R1 and path length are ``ganops.r1_penalty`` / ``ganops.path_length_penalty`` (gradients with
``create_graph=True`` inside ``ganops.no_weight_gradients()``, fused sums of squares). ``D(x)`` of
Dmain and of Dreg both feed the ADA controller (sign of logits), as NVIDIA's 'Loss/signs/real' does.
A call is one *round* (see ``training.stylegan2_recipe``): one style-mixing cutoff, path length on
``len(gen_z) // pl_batch_shrink`` samples (at least 1) and one pl_mean update.
"""
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

import ganops


def g_main_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss per sample: softplus(-D(G(z)))."""
    return F.softplus(-fake_logits)


def d_main_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss per sample: softplus(D(G(z))) + softplus(-D(x))."""
    return F.softplus(fake_logits) + F.softplus(-real_logits)


class StyleGAN2Loss:
    """Accumulates the gradients of one phase (see module docstring).

    ``G`` has ``mapping(z, c, update_w_avg=...) -> ws [N, num_ws, w_dim]`` and ``synthesis(ws) ->
    images``; ``D(images, c) -> logits [N, 1]``. ``--compile`` compiles :meth:`accumulate_gradients`
    of each phase as a whole (``training.step_compile``), the penalties' input gradients included.
    """

    def __init__(self, G, D, augment_pipe=None, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 real_sign_hook: Optional[Callable] = None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.r1_gamma, self.style_mixing_prob = r1_gamma, style_mixing_prob
        self.pl_weight, self.pl_batch_shrink, self.pl_decay = pl_weight, pl_batch_shrink, pl_decay
        # running mean of the path lengths: one buffer, only ever updated in place (copy_), so a CUDA graph
        # (``training.cuda_graphs``) that captured a step reads and writes the current value
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.real_sign_hook = real_sign_hook

    def run_G(self, z, c):
        ws = self.mixed_styles(z, c, update_w_avg=True)
        return self.G.synthesis(ws), ws

    def mixed_styles(self, z, c, update_w_avg: bool) -> torch.Tensor:
        """ws of z; with probability ``style_mixing_prob`` the layers from a random cutoff on take the
        ws of a second random z."""
        mapping = self.G.mapping
        ws = mapping(z, c, update_w_avg=update_w_avg)
        if self.style_mixing_prob > 0:
            num_ws = ws.shape[1]
            cutoff = torch.randint(1, max(num_ws, 2), [], device=ws.device)
            cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing_prob, cutoff,
                                 torch.full_like(cutoff, num_ws))
            mixed = mapping(torch.randn_like(z), c, update_w_avg=False)
            layer = torch.arange(num_ws, device=ws.device).view(1, -1, 1)
            ws = torch.where(layer < cutoff, ws, mixed)
        return ws

    def run_D(self, img, c):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(self, phase: str, real_img, real_c, gen_z, gen_c, gain: float) -> Dict[str, torch.Tensor]:
        """Backward of ``phase`` in {'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'}; returns stats."""
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0
        stats = {}
        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            loss = g_main_loss(gen_logits)
            loss.mean().mul(gain).backward()
            stats.update({"loss/G": loss.detach().mean(), "scores/fake": gen_logits.detach().mean()})
        if do_Gpl:
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            penalty, pl_mean = ganops.path_length_penalty(gen_img, gen_ws, self.pl_mean, self.pl_decay)
            self.pl_mean.copy_(pl_mean)   # in place: a captured step (--cuda-graphs) keeps reading this buffer
            loss = penalty * self.pl_weight
            (gen_img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()
            stats["loss/pl_penalty"] = penalty.detach().mean()
        if do_Dmain:
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            loss_gen = F.softplus(gen_logits)
            loss_gen.mean().mul(gain).backward()
            stats["scores/fake_D"] = gen_logits.detach().mean()
        if do_Dmain or do_Dr1:
            real = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real, real_c)
            total = real_logits * 0
            if do_Dmain:
                loss_real = F.softplus(-real_logits)
                total = total + loss_real
                stats.update({"loss/D": (loss_gen + loss_real).detach().mean(),
                              "scores/real": real_logits.detach().mean()})
            if self.real_sign_hook is not None:
                self.real_sign_hook(real_logits.detach())
            if do_Dr1:
                penalty = ganops.r1_penalty(real, real_logits, self.r1_gamma)
                total = total + penalty.unsqueeze(1)
                stats["loss/r1_penalty"] = penalty.detach().mean() / (self.r1_gamma / 2)
            total.mean().mul(gain).backward()
        return stats
