"""``--cuda-graphs``: each phase of the training step captured in a CUDA graph and replayed.

:class:`PhaseGraphs` runs a function of tensors (a StyleGAN phase: forward, augmentation, penalties
with their input gradients, backward, the divergence guard's count and the optimiser step) through
one ``torch.cuda.CUDAGraph`` per *key* (the phase, its input shapes and whatever else the caller says
changes the recorded work, e.g. learning rates or StyleGAN3's blur filter size), following torch's
recipe for whole-network capture:

* the first :data:`WARMUP_RUNS` runs of a key are eager, on a side stream (they train as usual; lazy
  state such as Adam's moments, ADA's sign buffer and cuDNN's algorithm choice is made there);
* the next run captures the function on static copies of its inputs (the capture records kernels and
  executes nothing) and replays it once; later runs copy their inputs into the static buffers
  (``copy_``) and replay. The function's tensor results live in the graph's memory and are cloned
  before they are returned.

What the function mutates must be updated in place (a captured kernel writes to the address it saw
at capture): parameters, optimiser state (Adam with ``capturable=True``), ``pl_mean``, ADA's sign
buffer, the guard's counter. Host-side bookkeeping that a replay would skip is registered with
:func:`on_replay` while capturing. Gradients: ``zero_grad(set_to_none=True)`` before the capture, so
each graph's backward allocates its gradients in its own memory pool (torch's documented pattern).

Random numbers: torch registers the default CUDA generator with each graph; every replay advances
its philox offset, so each replay draws fresh numbers, but not necessarily the numbers an eager run
with the same seed draws.

Requirements (checked by the options: ``TrainOptions.check``): a CUDA device, one process, no
``--compile``.
"""
import collections
from typing import Callable, Hashable, List, Optional

import torch
from torch.utils._pytree import tree_map

WARMUP_RUNS = 2      # eager runs of a key (on a side stream) before it is captured
MAX_GRAPHS = 16      # graphs kept; the least recently used is dropped (its memory freed) beyond that

_hooks: Optional[List[Callable[[], None]]] = None     # host callbacks of the graph being captured


def on_replay(fn: Callable[[], None]) -> None:
    """While a graph is being captured: run ``fn`` (host-side bookkeeping, no device work) after every
    replay of it. Otherwise nothing (the caller has done its bookkeeping eagerly)."""
    if _hooks is not None:
        _hooks.append(fn)


class _Captured:
    def __init__(self, graph, inputs, outputs, hooks):
        self.graph, self.inputs, self.outputs, self.hooks = graph, inputs, outputs, hooks


class PhaseGraphs:
    """CUDA graphs of functions of tensors, one per key (see the module docstring)."""

    def __init__(self, warmup: int = WARMUP_RUNS, max_graphs: int = MAX_GRAPHS):
        self.warmup, self.max_graphs = warmup, max_graphs
        self.graphs = collections.OrderedDict()     # key -> _Captured, least recently used first
        self.eager_runs = collections.Counter()     # key -> warm-up runs so far
        self.captures = 0                           # graphs captured so far (tests, docs)
        self._stream = None

    def clear(self) -> None:
        """Forget every graph (after a state load replaced optimiser state tensors, or a rollback): the
        next runs warm up and capture again."""
        self.graphs.clear()
        self.eager_runs.clear()

    def run(self, key: Hashable, fn: Callable, *inputs: torch.Tensor):
        """``fn(*inputs)``: eagerly on a side stream while ``key`` warms up, then by replaying its graph.
        Returns ``fn``'s results (tensors cloned out of the graph's memory)."""
        key = (key, tuple((tuple(t.shape), t.dtype, t.device) for t in inputs))
        captured = self.graphs.get(key)
        if captured is None:
            if self.eager_runs[key] < self.warmup:
                self.eager_runs[key] += 1
                return self._on_side_stream(fn, inputs)
            captured = self._capture(key, fn, inputs)
        self.graphs.move_to_end(key)
        for static, value in zip(captured.inputs, inputs):
            static.copy_(value)
        captured.graph.replay()
        for hook in captured.hooks:
            hook()
        return tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, captured.outputs)

    def _side_stream(self) -> torch.cuda.Stream:
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        return self._stream

    def _on_side_stream(self, fn, inputs):
        stream, current = self._side_stream(), torch.cuda.current_stream()
        stream.wait_stream(current)
        with torch.cuda.stream(stream):
            out = fn(*inputs)
        current.wait_stream(stream)
        return out

    def _capture(self, key, fn, inputs) -> _Captured:
        global _hooks
        static = tuple(t.clone() for t in inputs)
        graph, hooks = torch.cuda.CUDAGraph(), []
        torch.cuda.synchronize()
        _hooks = hooks
        try:
            # thread_local: the data loader's pin-memory thread may call CUDA while this thread captures
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                outputs = fn(*static)
        finally:
            _hooks = None
        captured = _Captured(graph, static, outputs, hooks)
        self.graphs[key] = captured
        self.captures += 1
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        return captured
