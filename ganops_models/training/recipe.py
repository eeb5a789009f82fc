"""The recipe abstraction: everything model-specific the training loop needs.

The loop (``training/loop.py``) owns data, ticks, logging, snapshots, checkpoints and
distribution; a :class:`Recipe` owns networks, optimisers, losses and augmentation. The loop knows a
model only through this contract. To add a model, make a folder ``models/<name>/`` with its
network, recipe (a subclass of :class:`Recipe`) and presets, and list it in
:mod:`ganops_models.models.registry`.

Contract (all tensors on ``self.device``; images in [-1, 1] float [N, C, H, W]):
  * ``Options``: the model's options class (a :class:`TrainOptions` subclass); ``__init__(opts, data,
    device, dist)`` builds networks and optimisers from an instance of it,
    a :class:`DataInfo` and the rank info, identically seeded on every rank (the loop broadcasts
    rank 0's parameters and buffers afterwards via :meth:`modules`).
  * ``train_step(reals, labels, step, cur_nimg) -> dict[str, Tensor]``: one optimisation step on
    this rank's share of the batch; gradients averaged with ``distributed.sync_grads`` before each
    optimiser step (:meth:`step_optimizer` does that and counts steps with non-finite gradients for
    the divergence guard); returns scalar stats (detached tensors; no host sync needed).
  * ``sample(z, c, truncation_psi=1.0, noise_mode='const', batch=None) -> images`` on the CPU:
    samples of the EMA generator (no grad) for grids, metrics and generate.py; options a model
    does not have (truncation, noise) are accepted and ignored.
  * ``latents(n, generator) -> z`` on the CPU from a torch.Generator (reproducible grids).
  * ``arch_spec() -> dict``: JSON-able architecture description; a checkpoint whose spec differs is
    refused before training.
  * ``state_dict()`` / ``load_state_dict(state)``: everything needed to resume exactly (networks,
    EMA, optimisers, augment state, running means).
  * ``augment_p`` (float or None), ``generator_for_eval()`` (module mapping (z, c) -> images).
  * Optional ``compile()`` to torch.compile forward passes for ``--compile``.
  * Optional ``batch_size(cur_nimg)``: the global batch of the next step (default ``opts.batch``; ProGAN
    changes it per phase) and ``tick_stats()``: extra values for every stats.jsonl row.
"""
import dataclasses
from typing import Dict, Iterable, Optional, Type

import torch

from ganops_models.training import distributed, guard
from ganops_models.training.options import TrainOptions


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a recipe needs to know about the training data."""
    resolution: tuple          # (H, W)
    num_channels: int = 3
    label_dim: int = 0         # 0: unconditional
    name: str = "data"


# Devices whose fused Adam keeps its step counter on the device (torch 2.14: CPU and CUDA).
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(params, capturable: bool = False, **kwargs) -> torch.optim.Adam:
    """torch.optim.Adam, fused where the parameters' device supports it: its step counter then stays on
    the device, so ``step()`` never synchronises with the host (the unfused Adam reads it with
    ``.item()``), and a GradScaler hands it the scale and inf flags as tensors. Same update up to
    float rounding (a few ulp). ``capturable``: its ``step()`` may be captured in a CUDA graph
    (``--cuda-graphs``; CUDA parameters only)."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAM_DEVICES for p in params)
    return torch.optim.Adam(params, fused=fused or None, capturable=capturable, **kwargs)


class Recipe:
    name = "base"
    # The model's options (fields, defaults, help, checks): a subclass of TrainOptions.
    Options: Type[TrainOptions] = TrainOptions
    # --cfg used when none is given, by device type.
    default_cfg: Dict[str, str] = {}

    def __init__(self, opts: TrainOptions, data: DataInfo, device: torch.device,
                 dist: distributed.DistInfo):
        opts.check(dist.world_size)   # resolve() checked them already; options built in code are checked here
        self.opts, self.data, self.device, self.dist = opts, data, device, dist
        self.batch_per_process = opts.batch // dist.world_size
        self.nonfinite_grad_steps = torch.zeros([], device=device)   # for training.guard

    # --- to override ------------------------------------------------------------------------
    def modules(self) -> Dict[str, torch.nn.Module]:
        """Named modules whose parameters/buffers are broadcast from rank 0 at start."""
        raise NotImplementedError

    def train_step(self, reals: torch.Tensor, labels: torch.Tensor, step: int,
                   cur_nimg: int) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
               noise_mode: str = "const", batch: Optional[int] = None) -> torch.Tensor:
        raise NotImplementedError

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def arch_spec(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def generator_for_eval(self) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def augment_p(self) -> Optional[float]:
        return None

    def compile(self) -> None:
        """torch.compile the forward passes (``--compile``); default: nothing to compile."""

    def batch_size(self, cur_nimg: int) -> int:
        """Global batch of the step after ``cur_nimg`` images (the loop re-creates its loader on a change)."""
        return self.opts.batch

    def tick_stats(self) -> Dict[str, float]:
        """Extra values for this tick's stats.jsonl row (e.g. ProGAN's resolution and alpha)."""
        return {}

    # --- shared helpers ---------------------------------------------------------------------
    _GAN_STATE = ("G", "D", "G_ema", "opt_G", "opt_D")

    def gan_state_dict(self) -> dict:
        """State of the attributes G, D, G_ema, opt_G and opt_D that GAN recipes share."""
        return {name: getattr(self, name).state_dict() for name in self._GAN_STATE}

    def load_gan_state_dict(self, state: dict) -> None:
        for name in self._GAN_STATE:
            getattr(self, name).load_state_dict(state[name])

    @torch.no_grad()
    def update_ema(self, cur_nimg: int) -> None:
        """G_ema <- lerp(G_ema, G, 1 - beta), beta = 0.5 ** (batch / ema_nimg) with ema_nimg = ema * 1000,
        capped at ema_rampup * cur_nimg when ramping up (StyleGAN2-ADA); buffers are copied."""
        ema_nimg = self.opts.ema * 1000
        if self.opts.ema_rampup is not None:
            ema_nimg = min(ema_nimg, cur_nimg * self.opts.ema_rampup)
        beta = 0.5 ** (self.opts.batch / max(ema_nimg, 1e-8))
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def step_optimizer(self, opt: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter]) -> None:
        """Count a step with non-finite gradients for the divergence guard, average the gradients
        over ranks, nan_to_num them, step."""
        params = [p for p in params if p.grad is not None]
        self.nonfinite_grad_steps += guard.count_nonfinite(params)
        distributed.sync_grads(params)
        opt.step()

    def take_nonfinite_grad_steps(self) -> torch.Tensor:
        """Steps with non-finite gradients since the last call (a 0-d tensor; no host sync)."""
        count = self.nonfinite_grad_steps.clone()
        self.nonfinite_grad_steps.zero_()   # in place: a captured step (--cuda-graphs) keeps counting into it
        return count
