"""Shared machinery of the FastGAN and DCGAN recipes: one G and one D, Adam for each, G EMA,
mixed precision and the generic recipe contract (sample, latents, state_dict).

G EMA uses the trainer's ``--ema`` half-life in kimg (``beta = 0.5 ** (batch / (ema * 1000))``,
ramped up with ``ema_rampup`` like StyleGAN2-ADA); the presets pick ``ema = 0.6928 * batch / 1000``
kimg, i.e. ``beta = 0.999`` per step. G EMA's batch norm samples with its running statistics (copied
from G at every update) unless the recipe samples with batch statistics (:attr:`SimpleGANRecipe.
sample_batch_statistics`: FastGAN's default, as its official eval.py).

Precision: ``fp32``, or on CUDA ``fp16`` (autocast + gradient scaling) / ``bf16`` (autocast).
"""
import copy
import math
import warnings
from contextlib import nullcontext
from typing import Dict, Optional, Tuple

import torch

from ganops_models.nn.layers import batch_norm_statistics
from ganops_models.training.distributed import sync_grads
from ganops_models.errors import OptionsError
from ganops_models.training.recipe import Recipe, adam
from ganops_models.training.step_compile import compile_phase

EMA_BETA = 0.999
SAMPLE_NOISE_SEED = 0


def ema_kimg_for_beta(batch: int, beta: float = EMA_BETA) -> float:
    """EMA half-life (kimg) that gives ``beta`` per step at this batch size."""
    return batch * math.log(0.5) / math.log(beta) / 1000



class EvalGenerator(torch.nn.Module):
    """(z, c=None) -> images [N, C, H, W] for an unconditional G (FastGAN's aux output dropped); its batch
    norm uses the statistics of each batch (``batch_statistics``) or its running statistics."""

    def __init__(self, G: torch.nn.Module, batch_statistics: bool = False):
        super().__init__()
        self.G, self.batch_statistics = G, batch_statistics
        self.z_dim, self.c_dim = G.z_dim, 0

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, **unused) -> torch.Tensor:
        with batch_norm_statistics(self.G, self.batch_statistics):
            out = self.G(z)
        return out[0] if isinstance(out, tuple) else out


class SimpleGANRecipe(Recipe):
    """Base for single-G/single-D recipes; subclasses build ``self.G``/``self.D``, call
    :meth:`_finish_init` and implement ``train_step`` with :meth:`autocast` and :meth:`step`, its
    phases in methods named in :attr:`compiled_phases`."""

    # Methods of one phase each (tensors in, losses and stats out) that --compile compiles whole.
    compiled_phases: Tuple[str, ...] = ()

    @property
    def sample_batch_statistics(self) -> bool:
        """Whether samples (grids, generate, metrics) normalise with each batch's statistics."""
        return False

    def _finish_init(self, lr_g: float, lr_d: float, betas=(0.5, 0.999)) -> None:
        if self.opts.cond:
            raise OptionsError(f"--model {self.name} is unconditional; --cond is not supported")
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = adam(self.G.parameters(), lr=lr_g, betas=betas)
        self.opt_D = adam(self.D.parameters(), lr=lr_d, betas=betas)
        precision = self.opts.precision
        if precision != "fp32" and self.device.type != "cuda":
            warnings.warn(f"--precision {precision} is only used on CUDA; training in fp32 on {self.device.type}")
            precision = "fp32"
        self.amp_dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        fp16 = self.amp_dtype == torch.float16
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in ("G", "D")}

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, which: str, loss: torch.Tensor) -> None:
        """Backward ``loss``, average gradients over ranks (nan_to_num), step G's or D's optimiser."""
        module, opt, scaler = (self.G, self.opt_G, self.scalers["G"]) if which == "G" else \
            (self.D, self.opt_D, self.scalers["D"])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        sync_grads(module.parameters())
        scaler.step(opt)
        scaler.update()

    # --- Recipe contract -------------------------------------------------------------------------
    def compile(self) -> None:
        """``--compile``: each method named in :attr:`compiled_phases` (a whole phase: forwards,
        augmentation, losses and the gradient penalty with its input gradient) is replaced by its
        compiled version (:func:`~ganops_models.training.step_compile.compile_phase`); the backward of
        a compiled phase is compiled with it. Gradient scaling, the optimiser steps and G EMA stay eager."""
        for name in self.compiled_phases:
            setattr(self, name, compile_phase(getattr(self, name)))

    def modules(self) -> Dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn([n, self.G.z_dim], generator=generator)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, batch: Optional[int] = None,
               truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        """G_ema images (float32, CPU) for latents z (unconditional: c must be None or empty).

        noise_mode (FastGAN's noise injection): 'const' draws it from a fixed seed (reproducible
        grids; the global RNG is left untouched), 'random' from the global RNG, 'none' disables it."""
        if truncation_psi != 1:
            raise ValueError(f"truncation is not defined for --model {self.name} (got psi {truncation_psi}); use 1")
        if c is not None and c.numel() > 0:
            raise ValueError(f"--model {self.name} is unconditional; labels c must be None or empty")
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        batch = batch or self.batch_per_process
        ema = self.generator_for_eval()
        noise_layers = [m for m in self.G_ema.modules() if hasattr(m, "noise_enabled")]
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            for m in noise_layers:
                m.noise_enabled = noise_mode != "none"
            with torch.random.fork_rng(devices=devices, enabled=noise_mode == "const"):
                if noise_mode == "const":
                    torch.manual_seed(SAMPLE_NOISE_SEED)
                return torch.cat([ema(zb.to(self.device)).float().cpu() for zb in z.split(batch)])
        finally:
            for m in noise_layers:
                m.noise_enabled = True

    def generator_for_eval(self) -> torch.nn.Module:
        return EvalGenerator(self.G_ema, self.sample_batch_statistics)

    def state_dict(self) -> dict:
        return {**self.gan_state_dict(), "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.load_gan_state_dict(state)
        for k, s in self.scalers.items():
            if state["scalers"].get(k):
                s.load_state_dict(state["scalers"][k])
