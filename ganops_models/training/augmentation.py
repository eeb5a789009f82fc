"""Discriminator augmentation for the StyleGAN2 recipe: ``--aug ada|fixed|noaug|diffaug``.

  * ada: ADA pipeline (``--augpipe``, default bgc) starting at ``--p``, tuned every
    ``ada_interval`` steps by the controller from the sign of D(reals) towards ``--target``;
  * fixed: the ADA pipeline at a constant ``--p``;
  * noaug: none;
  * diffaug: DiffAugment color,translation,cutout (no p).
"""
from typing import Optional

import torch

from ganops_models.training import cuda_graphs


class Augmentation:
    """The pipe (a module applied to D's inputs, or None) and the optional ADA controller."""

    def __init__(self, pipe: Optional[torch.nn.Module] = None, controller=None, interval: int = 4):
        self.pipe, self.controller, self.interval = pipe, controller, interval

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record D(reals) of the Dmain and Dreg passes (the ADA overfitting heuristic r_t = E[sign(D(x))])."""
        if self.controller is not None:
            self.controller.accumulate(real_logits)
            cuda_graphs.on_replay(self.controller.note_accumulated)   # a replay adds signs without the host

    def update(self, step: int, batch_size: int) -> None:
        """Every ``interval`` steps let the controller move p (all ranks reach the same value)."""
        if self.controller is not None and (step + 1) % self.interval == 0:
            self.controller.update(self.pipe)

    def state_dict(self) -> dict:
        state = {}
        if self.pipe is not None and hasattr(self.pipe, "p"):
            state["p"] = self.pipe.p.detach().cpu().clone()
        if self.controller is not None:
            state["controller"] = self.controller.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if "p" in state:
            self.pipe.p.copy_(state["p"])
        if "controller" in state:
            self.controller.load_state_dict(state["controller"])


def build(opts, device: torch.device) -> Augmentation:
    """From ``opts.aug``/``p``/``target``/``ada_kimg``/``augpipe``/``ada_interval`` (global batch)."""
    if opts.aug == "diffaug":
        from ganops_models.augment import DiffAugment
        return Augmentation(DiffAugment(opts.diffaug).to(device))
    from ganops_models.augment import build_augment
    pipe, controller = build_augment(opts.aug, p=opts.p, target=opts.target, ada_kimg=opts.ada_kimg,
                                     batch_size=opts.batch, preset=opts.augpipe, interval=opts.ada_interval,
                                     device=device)
    if pipe is not None:
        pipe.requires_grad_(False)
    return Augmentation(pipe, controller, opts.ada_interval)
