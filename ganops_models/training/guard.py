"""Divergence guard: a run whose losses, gradients or parameters became non-finite stops (or rolls
back) at the next tick instead of writing NaN checkpoints over good ones.

Cheap by construction, with no host sync per step:
  * every optimiser step of a recipe adds 1 to a device counter when any of its gradients is
    non-finite (:func:`count_nonfinite`, one fused max-abs over the gradients, taken before the
    gradients are averaged over processes and nan_to_num'd as NVIDIA's loop does); the loop reports
    it as the tick stat ``guard/nonfinite_grad_steps``;
  * a non-finite loss shows up as a non-finite mean in the tick's stats record;
  * parameters and buffers are checked once per tick (:func:`nonfinite_modules`), before any
    snapshot, so a checkpoint never holds non-finite weights.

``--nan-policy stop`` (default) ends the run with :class:`DivergenceError` naming the tick and the
last good checkpoint; ``rollback`` reloads that checkpoint, multiplies every learning rate in effect
by :data:`ROLLBACK_LR_FACTOR` and goes on, at most :data:`MAX_ROLLBACKS` times per run.
Like NVIDIA's loop, an occasional non-finite gradient (an fp16 overflow) is nan_to_num'd and training
goes on; the guard trips on it only when gradients were non-finite in at least
:data:`GRAD_TRIP_FRACTION` of a tick's training steps (on average, per process), or together with a
non-finite loss or parameter.
"""
import math
from typing import Dict, Iterable, List

import torch

GRAD_STAT = "guard/nonfinite_grad_steps"
ROLLBACK_LR_FACTOR = 0.5
MAX_ROLLBACKS = 3
GRAD_TRIP_FRACTION = 0.5


def _any_nonfinite(tensors: List[torch.Tensor]) -> torch.Tensor:
    """0-d float32 tensor: 1 when any element of ``tensors`` is NaN or +-inf, else 0 (no host sync)."""
    tensors = [t.detach() for t in tensors if t.numel() > 0]
    if not tensors:
        return torch.zeros([])
    peaks = torch._foreach_norm(tensors, float("inf"))
    return (~torch.stack([p.float() for p in peaks]).isfinite()).any().float()


def count_nonfinite(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """1 if any gradient of ``params`` is non-finite, else 0 (a 0-d tensor on their device)."""
    return _any_nonfinite([p.grad for p in params if p.grad is not None])


def nonfinite_modules(modules: Dict[str, torch.nn.Module]) -> List[str]:
    """Names of the modules with a non-finite parameter or floating-point buffer (one host sync)."""
    names = list(modules)
    flags = [_any_nonfinite([*m.parameters(), *(b for b in m.buffers() if b.is_floating_point())]).cpu()
             for m in modules.values()]
    return [name for name, flag in zip(names, flags) if flag > 0]


def tick_problems(record: Dict[str, float], modules: Dict[str, torch.nn.Module]) -> List[str]:
    """What is non-finite at this tick: stats (losses, scores) of the record, steps with non-finite
    gradients, parameters; an empty list when training is healthy."""
    problems = [f"{name} = {value}" for name, value in record.items()
                if isinstance(value, float) and not math.isfinite(value)]
    problems += [f"non-finite parameters in {name}" for name in nonfinite_modules(modules)]
    grad_steps = record.get(GRAD_STAT, 0)
    if grad_steps > 0 and (problems or grad_steps >= GRAD_TRIP_FRACTION):
        problems.append(f"non-finite gradients in {grad_steps:g} optimiser step(s) per training step and process")
    return problems


def load_with_lower_lr(recipe, state: dict, factor: float) -> None:
    """Load a checkpoint's recipe ``state``, then set every learning rate of G's and D's optimisers to
    ``factor`` times the one in effect before (so repeated rollbacks keep lowering it)."""
    optimizers = [recipe.opt_G, recipe.opt_D]
    lrs = [[group["lr"] for group in opt.param_groups] for opt in optimizers]
    recipe.load_state_dict(state)
    for opt, group_lrs in zip(optimizers, lrs):
        for group, lr in zip(opt.param_groups, group_lrs):
            group["lr"] = lr * factor
