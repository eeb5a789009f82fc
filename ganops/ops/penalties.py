"""Gradient penalties: R1 / R2, StyleGAN2 path-length regularisation and WGAN-GP.

Each takes the input gradient with ``torch.autograd.grad(create_graph=True)`` inside
``ganops.no_weight_gradients()`` (the gradient's own backward does not need weight gradients of
ganops convolutions), feeding the output gradient directly as ``grad_outputs`` (no ``.sum()`` or
``(images * noise).sum()`` graph), and reduces it with the fused per-sample
``ganops.sum_squares`` (CUDA / Triton / reference, chosen by ``impl``). The returned penalties
are differentiable: ``penalty.mean().backward()`` reaches the network's weights through the
double-backward graph.

torch.compile: with ``fullgraph=True`` each penalty compiles into one graph, forward and double
backward: Dynamo traces the input gradient within :func:`trace_autograd`, a scope that turns on
``torch._dynamo.config.trace_autograd_ops`` only while that call is traced (the global config is left
as it is). ``r1_penalty`` and ``path_length_penalty`` may be compiled on their own (the input that
requires grad comes from outside) or inside a whole compiled step. ``gradient_penalty`` builds its
own input (the interpolated images); Dynamo refuses to return a tensor derived from an intermediate
made to require grad, so under torch.compile it takes the input gradient with ``torch.func.vjp(D, x)``
instead (same values and parameter gradients; eager calls keep ``autograd.grad``): it compiles alone
or inside a step. Each penalty compiles once for every batch size (``dynamic=True``).
"""
import math
from typing import Callable, Optional, Tuple

import torch

from .sum_squares import sum_squares
from ..ref.conv2d_gradfix import no_weight_gradients
from ._numbers import is_finite

_REDUCTIONS = ("none", "mean", "sum")
_GP_KINDS = ("wgan-gp", "real", "fake")


def _check_reduce(reduce: str, op: str) -> None:
    if reduce not in _REDUCTIONS:
        raise ValueError(f"{op}: reduce must be one of {_REDUCTIONS}, got {reduce!r}")


def _reduce(per_sample: torch.Tensor, reduce: str) -> torch.Tensor:
    if reduce == "mean":
        return per_sample.mean()
    if reduce == "sum":
        return per_sample.sum()
    return per_sample


def _check_number(value, name: str, op: str, minimum: Optional[float] = None, maximum: Optional[float] = None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: {name} must be a Python number, got {type(value).__name__}")
    if not is_finite(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be finite and {bounds}, got {value}")


def _check_tensor(t, name: str, op: str, requires_grad: bool = False) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got {t.dtype}")
    if t.dim() < 1:
        raise ValueError(f"{op}: {name} must have a batch dimension, got a 0-d tensor")
    if requires_grad and not t.requires_grad:
        raise ValueError(f"{op}: {name} must require grad (it is the input the gradient is taken w.r.t.)")


def trace_autograd():
    """A context manager under which torch.compile traces ``torch.autograd.grad`` and
    ``Tensor.backward`` into the graph instead of breaking it (Dynamo's ``trace_autograd_ops``, set
    only while Dynamo traces the block; outside torch.compile it changes nothing). The penalties use
    it for their input gradient; use it around the ``backward()`` of a compiled training step:

        @torch.compile(fullgraph=True)
        def d_reg_step(reals):
            reals = reals.detach().requires_grad_(True)
            penalty = ganops.r1_penalty(reals, D(reals), gamma, reduce="mean")
            with ganops.trace_autograd():
                penalty.backward()
            return penalty.detach()

    Importing torch._dynamo happens on the first call (see ganops/ops/_autograd_tracing.py)."""
    from ._autograd_tracing import TRACE_AUTOGRAD

    return TRACE_AUTOGRAD


def _input_gradient(outputs: torch.Tensor, inputs: torch.Tensor, grad_outputs: torch.Tensor) -> torch.Tensor:
    """d<outputs, grad_outputs>/d inputs with create_graph=True, weight gradients skipped; traced
    into the graph (with its double backward) under torch.compile (:func:`trace_autograd`)."""
    with no_weight_gradients():
        if torch.compiler.is_compiling():
            with trace_autograd():
                return _grad(outputs, inputs, grad_outputs)
        return _grad(outputs, inputs, grad_outputs)


def _grad(outputs: torch.Tensor, inputs: torch.Tensor, grad_outputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(outputs=[outputs], inputs=[inputs], grad_outputs=[grad_outputs],
                                  create_graph=True, only_inputs=True)
    return grad


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor, gamma: float, reduce: str = "none",
               impl: Optional[str] = None) -> torch.Tensor:
    """R1: (gamma / 2) * ||d sum(real_logits) / d real_images||^2 per sample -> [N] (or reduced).

    ``real_images`` [N, ...] must require grad and be what the discriminator saw (after augmentation);
    ``real_logits`` [N, ...] its output. R2 is the same call on fake images and their logits.
    ``reduce``: 'none' | 'mean' | 'sum'. ``impl`` selects the sum-of-squares backend.
    """
    op = "r1_penalty"
    _check_tensor(real_images, "real_images", op, requires_grad=True)
    _check_tensor(real_logits, "real_logits", op)
    if real_logits.shape[0] != real_images.shape[0]:
        raise ValueError(f"{op}: real_logits batch {real_logits.shape[0]} must equal real_images batch "
                         f"{real_images.shape[0]}")
    if real_logits.device != real_images.device:
        raise ValueError(f"{op}: real_logits must be on {real_images.device}, got {real_logits.device}")
    _check_number(gamma, "gamma", op, minimum=0.0)
    _check_reduce(reduce, op)
    grad = _input_gradient(real_logits, real_images, torch.ones_like(real_logits))
    return _reduce(sum_squares(grad, gamma / 2, impl=impl), reduce)


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, pl_mean, decay: float = 0.01,
                        noise: Optional[torch.Tensor] = None, reduce: str = "none",
                        impl: Optional[str] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2 path-length regularisation, the math of StyleGAN2-ADA's loss.py.

    images [N, C, H, W] = G(ws), ws [N, num_ws, w_dim] (requires grad), pl_mean: the running mean
    (0-d tensor or number; never differentiated). With noise = randn_like(images) / sqrt(H * W)
    (or the given ``noise``), g = d<images, noise>/d ws,
        pl_lengths[n] = sqrt(mean_l sum_d g[n, l, d]^2)         (one fused reduction)
        new_pl_mean   = pl_mean.lerp(mean(pl_lengths), decay)
        penalty[n]    = (pl_lengths[n] - new_pl_mean)^2
    As in loss.py, new_pl_mean in the penalty carries the gradient of mean(pl_lengths) (the old
    pl_mean has none). Returns (penalty [N] or reduced, new_pl_mean detached, pl_mean's dtype):
    copy new_pl_mean into the running buffer, as loss.py does.
    """
    op = "path_length_penalty"
    _check_tensor(images, "images", op)
    _check_tensor(ws, "ws", op, requires_grad=True)
    if images.dim() != 4:
        raise ValueError(f"{op}: images must be 4-D [N, C, H, W], got shape {tuple(images.shape)}")
    if ws.dim() != 3 or ws.shape[0] != images.shape[0]:
        raise ValueError(f"{op}: ws must be 3-D [N, num_ws, w_dim] with N = {images.shape[0]}, got shape "
                         f"{tuple(ws.shape)}")
    if isinstance(pl_mean, torch.Tensor):
        if pl_mean.numel() != 1 or not pl_mean.is_floating_point():
            raise ValueError(f"{op}: pl_mean must be a one-element floating-point tensor or a number, got "
                             f"shape {tuple(pl_mean.shape)} of {pl_mean.dtype}")
        pl_mean = pl_mean.detach().to(images.device).reshape(())
    else:
        _check_number(pl_mean, "pl_mean", op, minimum=0.0)
        pl_mean = torch.tensor(float(pl_mean), device=images.device)
    _check_number(decay, "decay", op, minimum=0.0, maximum=1.0)
    _check_reduce(reduce, op)
    if noise is None:
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    elif not isinstance(noise, torch.Tensor) or noise.shape != images.shape:
        raise ValueError(f"{op}: noise must be a tensor of the images' shape {tuple(images.shape)}")
    grad = _input_gradient(images, ws, noise.to(images.dtype))
    pl_lengths = sum_squares(grad, 1.0 / ws.shape[1], impl=impl).sqrt()
    new_pl_mean = pl_mean.lerp(pl_lengths.mean().to(pl_mean.dtype), decay)
    penalty = (pl_lengths - new_pl_mean).square()
    return _reduce(penalty, reduce), new_pl_mean.detach()


def _check_logits(logits, x: torch.Tensor, op: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: D must return a tensor of logits [N, ...] with N = {x.shape[0]}")


def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: Optional[torch.Tensor] = None, kind: str = "wgan-gp", target: float = 1.0,
                     weight: float = 1.0, alpha: Optional[torch.Tensor] = None, reduce: str = "none",
                     impl: Optional[str] = None) -> torch.Tensor:
    """weight * (||d sum D(x) / d x||_2 - target)^2 per sample -> [N] (or reduced).

    kind 'wgan-gp': x = fake + alpha * (real - fake), alpha ~ U[0, 1) per sample (or the given
    ``alpha`` [N]); 'real' / 'fake': x = real / fake (lightweight-gan's penalty on reals).
    real / fake are detached. The norm is sqrt of the fused sum of squares, clamped at the smallest
    normal float so a zero gradient gives a zero (not NaN) derivative.
    """
    op = "gradient_penalty"
    if not callable(D):
        raise TypeError(f"{op}: D must be callable (the discriminator), got {type(D).__name__}")
    if kind not in _GP_KINDS:
        raise ValueError(f"{op}: kind must be one of {_GP_KINDS}, got {kind!r}")
    _check_number(target, "target", op, minimum=0.0)
    _check_number(weight, "weight", op, minimum=0.0)
    _check_reduce(reduce, op)
    if kind != "fake":
        _check_tensor(real, "real", op)
    if kind != "real":
        _check_tensor(fake, "fake", op)
    if kind == "wgan-gp":
        if fake.shape != real.shape or fake.device != real.device or fake.dtype != real.dtype:
            raise ValueError(f"{op}: fake must match real in shape, device and dtype, got {tuple(fake.shape)} "
                             f"{fake.device} {fake.dtype} vs {tuple(real.shape)} {real.device} {real.dtype}")
        n = real.shape[0]
        if alpha is None:
            alpha = torch.rand(n, device=real.device, dtype=real.dtype)
        elif not isinstance(alpha, torch.Tensor) or tuple(alpha.shape) != (n,):
            raise ValueError(f"{op}: alpha must be a tensor of shape ({n},)")
        alpha = alpha.detach().to(real.dtype).reshape((n,) + (1,) * (real.dim() - 1))
        x = torch.lerp(fake.detach(), real.detach(), alpha)
    else:
        x = (real if kind == "real" else fake).detach()
    if torch.compiler.is_compiling():
        logits, vjp = torch.func.vjp(D, x)   # the input gradient without an intermediate that requires grad
        _check_logits(logits, x, op)
        (grad,) = vjp(torch.ones_like(logits))
    else:
        x = x.requires_grad_(True)
        logits = D(x)
        _check_logits(logits, x, op)
        grad = _input_gradient(logits, x, torch.ones_like(logits))
    sq = sum_squares(grad, 1.0, impl=impl)
    norm = sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt()
    return _reduce((norm - target).square() * weight, reduce)
