"""``--compile``: torch.compile of whole training phases.

A *phase* is one function of a training step that turns inputs into losses and gradients: a
StyleGAN2 phase (Gmain, Greg, Dmain, Dreg, ...: forward, the penalty's input gradient and the
backward into the parameters) or a simple recipe's G / D loss with its gradient penalty. Each is
compiled as a whole with :func:`compile_phase`: ``torch.autograd.grad`` (R1, path length, WGAN-GP)
and ``Tensor.backward()`` are traced into the graph (Dynamo's ``trace_autograd_ops``), so the
penalties' double backward is compiled like the main passes, where plain ``torch.compile`` of the
networks would leave them eager. (ganops' ``conv2d_gradfix`` turns into plain, twice-differentiable
convolutions while Dynamo traces, so the penalties keep their weight terms.)

Random numbers drawn inside a compiled phase (style mixing, path-length noise, augmentation) come
from inductor's generator: same distributions, other values than an eager run with the same seed.
:func:`eager_random` makes them the eager ones (tests compare losses with it).

Internal knob: the environment variable ``GANOPS_COMPILE_BACKEND`` (default ``inductor``) names the
torch.compile backend; tests use ``aot_eager`` (the same traced graphs without inductor's C++ build).
"""
import contextlib
import functools
import os
from typing import Callable

import torch

BACKEND_ENV = "GANOPS_COMPILE_BACKEND"
# Compiled variants per function (phases share a code object; a last round of another size, StyleGAN3's
# blur filter and autocast each add one): more than torch's default 8 before it falls back to eager.
RECOMPILE_LIMIT = 64


def backend() -> str:
    return os.environ.get(BACKEND_ENV, "inductor")


def compile_phase(fn: Callable) -> Callable:
    """``fn`` under torch.compile with autograd traced into the graph (see the module docstring);
    same signature and results as ``fn`` up to float rounding."""
    compiled = torch.compile(fn, backend=backend())

    @functools.wraps(fn)
    def run(*args, **kwargs):
        limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        with torch._dynamo.config.patch(trace_autograd_ops=True, recompile_limit=limit):
            return compiled(*args, **kwargs)
    return run


@contextlib.contextmanager
def eager_random():
    """Random ops in compiled code draw from the eager generator (the numbers an eager run draws)."""
    import torch._inductor.config as inductor_config
    with inductor_config.patch(fallback_random=True):
        yield
