"""A scope in which torch.compile (Dynamo) traces ``torch.autograd.grad`` and ``Tensor.backward``.

Dynamo graph-breaks on both unless ``torch._dynamo.config.trace_autograd_ops`` is True (torch >= 2.14).
``TRACE_AUTOGRAD`` turns it on only while Dynamo traces the code inside the ``with`` block and puts
the previous value back after it: it is Dynamo's traceable config patch
(``torch._dynamo.patch_dynamo_config``), which Dynamo applies during tracing and re-creates around
the rest of the block when a graph break happens inside it. ``patch_dynamo_config`` accepts only the
flags listed in ``torch._dynamo.decorators._allowed_config_patches``; importing this module adds
``trace_autograd_ops`` to that list, which is the one change it makes outside the block (the config
itself keeps its value; nothing changes for code that does not enter the scope). Where the running
torch has no such flag or patch, the scope does nothing (and autograd.grad breaks the graph, as before).

Imported lazily, from code that runs under torch.compile only: importing torch._dynamo costs about
two seconds, which ``import ganops`` does not pay.
"""
import contextlib

import torch._dynamo
from torch._dynamo import decorators

FLAG = "trace_autograd_ops"


def _scope():
    allowed = getattr(decorators, "_allowed_config_patches", None)
    if not hasattr(torch._dynamo.config, FLAG) or allowed is None or not hasattr(decorators, "patch_dynamo_config"):
        return contextlib.nullcontext()
    if FLAG not in allowed:
        decorators._allowed_config_patches = tuple(allowed) + (FLAG,)
    return decorators.patch_dynamo_config({FLAG: True})


TRACE_AUTOGRAD = _scope()
