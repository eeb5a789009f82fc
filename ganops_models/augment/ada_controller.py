"""ADA's feedback loop: keep the discriminator's overfitting heuristic r_t = E[sign(D(reals))] at a target.

Every ``interval`` training steps: r_t = (sum of sign(D(x_real))) / (number of logits) since the last
adjustment (summed over DDP ranks when torch.distributed is initialised), then
``p <- max(p + sign(r_t - target) * batch_size * interval / (ada_kimg * 1000), 0)``, so p can move
from 0 to 1 in ``ada_kimg`` thousand images. ``batch_size`` is the global batch (all ranks).

Everything happens on the device of the logits: the signs are summed there and p moves there, so a
training step never waits for the host; r_t is read on the host only when asked for (:attr:`rt`,
:meth:`state_dict`), e.g. once per tick.
"""
from typing import Optional, Tuple

import torch

from ganops_models.augment.ada import AugmentPipe

AUG_MODES = ("ada", "fixed", "noaug")


class AdaController:
    """Accumulates sign(D(reals)) with :meth:`accumulate` and adjusts ``pipe.p`` in :meth:`step` (call
    every training step) or :meth:`update` (call every ``interval`` steps yourself)."""

    def __init__(self, target: float = 0.6, ada_kimg: float = 500, batch_size: int = 32, interval: int = 4):
        if not isinstance(target, (int, float)) or not 0 < target < 1:
            raise ValueError(f"target must be a number in (0, 1), got {target!r}")
        if not isinstance(ada_kimg, (int, float)) or ada_kimg <= 0:
            raise ValueError(f"ada_kimg must be a positive number, got {ada_kimg!r}")
        for name, value in (("batch_size", batch_size), ("interval", interval)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.target, self.ada_kimg, self.batch_size, self.interval = float(target), float(ada_kimg), batch_size, interval
        self.steps = 0
        self._rt = None                        # the last measured r_t (0-d tensor on the device, or a float)
        self._acc = None                       # tensor [sum of signs, count] on the logits' device
        self._pending = False                  # signs were accumulated since the last adjustment

    @property
    def rt(self) -> Optional[float]:
        """The last measured r_t (None before the first adjustment); reads the device."""
        return None if self._rt is None else float(self._rt)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add sign(D(reals)) of one batch (any shape; detached, no host sync)."""
        if not isinstance(real_logits, torch.Tensor) or not real_logits.is_floating_point():
            raise TypeError("real_logits must be a floating point torch.Tensor")
        logits = real_logits.detach()
        stats = torch.stack([logits.sign().sum(dtype=torch.float64),
                             logits.new_full((), logits.numel(), dtype=torch.float64)])
        if self._acc is None or self._acc.device != stats.device:
            self._acc = stats if self._acc is None else self._acc.to(stats.device) + stats
        else:
            self._acc.add_(stats)   # in place: one buffer, so a CUDA graph of the step keeps adding to it
        self._pending = True

    def note_accumulated(self) -> None:
        """Record that signs were added to the buffer without :meth:`accumulate` running on the host (a
        replayed CUDA graph that captured an :meth:`accumulate`), so the next :meth:`update` adjusts p."""
        self._pending = True

    @property
    def adjust_step(self) -> float:
        """|change of p| per adjustment."""
        return self.batch_size * self.interval / (self.ada_kimg * 1000)

    def step(self, pipe: AugmentPipe) -> bool:
        """Call once per training step; every ``interval`` steps runs :meth:`update` (returns its result)."""
        self.steps += 1
        if self.steps % self.interval != 0:
            return False
        return self.update(pipe)

    def update(self, pipe: AugmentPipe) -> bool:
        """Adjust ``pipe.p`` now from the signs accumulated since the last adjustment (for callers that
        count the interval themselves). Returns False, changing nothing, when none were accumulated.
        No host sync: r_t and the sign of r_t - target stay on the device (NaN r_t: p unchanged)."""
        if not self._pending:
            return False
        stats = self._acc.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        self._acc.zero_()
        self._pending = False
        self._rt = rt = stats[0] / stats[1]
        sign = (rt > self.target).to(pipe.p.dtype) - (rt < self.target).to(pipe.p.dtype)
        with torch.no_grad():
            pipe.p.copy_((pipe.p + sign.to(pipe.p.device) * self.adjust_step).clamp(min=0))
        return True

    def state_dict(self) -> dict:
        total, count = self._acc.tolist() if self._pending else (0.0, 0.0)
        return {"target": self.target, "ada_kimg": self.ada_kimg, "batch_size": self.batch_size,
                "interval": self.interval, "steps": self.steps, "rt": self.rt, "sum": total, "count": count}

    def load_state_dict(self, state: dict) -> None:
        buffer = self._acc
        self.__init__(state["target"], state["ada_kimg"], state["batch_size"], state["interval"])
        self.steps, self._rt = int(state["steps"]), state["rt"]
        self._pending = state["count"] > 0
        if buffer is not None:        # keep the buffer (in place): a captured step may read it
            buffer.copy_(torch.tensor([state["sum"], state["count"]], dtype=torch.float64))
            self._acc = buffer
        elif self._pending:
            self._acc = torch.tensor([state["sum"], state["count"]], dtype=torch.float64)


def build_augment(aug: str = "ada", p: Optional[float] = None, target: float = 0.6, ada_kimg: float = 500,
                  batch_size: int = 32, preset: str = "bgc", interval: int = 4, device="cpu",
                  **multipliers) -> Tuple[Optional[AugmentPipe], Optional[AdaController]]:
    """From the trainer's ``--aug/--p/--target/--ada-kimg`` values: (pipe, controller).

    noaug -> (None, None); fixed -> (pipe at p, None), p required; ada -> (pipe starting at p or 0,
    controller). ``batch_size`` is the global batch; extra keywords go to :class:`AugmentPipe`."""
    if aug not in AUG_MODES:
        raise ValueError(f"aug must be one of {AUG_MODES}, got {aug!r}")
    if aug == "noaug":
        if p is not None:
            raise ValueError("p is only meaningful with aug='fixed' or 'ada', got aug='noaug'")
        return None, None
    if aug == "fixed" and p is None:
        raise ValueError("aug='fixed' needs p (the fixed augmentation probability, e.g. --p 0.2)")
    pipe = AugmentPipe(preset=preset, p=0.0 if p is None else p, **multipliers).to(device)
    if aug == "fixed":
        return pipe, None
    return pipe, AdaController(target=target, ada_kimg=ada_kimg, batch_size=batch_size, interval=interval)
