"""Graph breaks and recompilations of every public ganops op and of every model's G and D under torch.compile.

    python -m benchmarks.graph_breaks [--impl ref] [--only NAME ...]

For each case (a tiny call of one public op, or a tiny G / D of one model) it reports:
  * ``breaks``: graph breaks of the forward (``torch._dynamo.explain``; 0 = one graph);
  * ``fullgraph``: whether ``torch.compile(fullgraph=True, backend="aot_eager")`` of forward and
    backward runs and matches eager (values and input / parameter gradients), else the error;
  * ``recompiles``: extra compilations when the same ``dynamic=True`` compiled function is called with
    batch sizes 2, 3, 4, 7, 17 (0 = compiled once for every batch size >= 2; PyTorch gives sizes 0
    and 1 graphs of their own);
  * ``unbacked``: the same with the batch dimension marked unbacked
    (``torch._dynamo.decorators.mark_unbacked(x, 0)``) and batch sizes 1, 3, 4, 7, 17, which includes
    batch 1 in the one graph (``error`` where code of torch branches on the batch size, e.g.
    BatchNorm, and for op cases with two batched arguments, whose independent unbacked sizes the
    op's argument check cannot compare; inside a network both are one size).
Backends: 'ref' always; 'triton' through Triton's interpreter when ``TRITON_INTERPRET=1`` is set
before the start (slow: tiny shapes only). The CUDA kernels need a GPU. The cases are shared with
tests/test_compile.py, which asserts zero breaks and zero recompiles.
"""
import argparse
import copy
import dataclasses
import sys
from typing import Callable, List, Optional, Sequence, Tuple

import torch

import ganops

BATCHES = (2, 3, 4, 7, 17)          # dynamic=True: PyTorch specialises sizes 0 and 1
UNBACKED_BATCHES = (1, 3, 4, 7, 17)  # with the batch dimension marked unbacked


@dataclasses.dataclass
class Case:
    """``make(n)`` -> (fn, args): a call of the case with batch size n; the gradients compared are those
    of the args that require grad and of ``params`` (what fn closes over: weights)."""
    name: str
    make: Callable[[int], Tuple[Callable, tuple]]
    params: Sequence[torch.Tensor] = ()   # tensors the function closes over whose gradients are compared
    build: Optional[Callable[[], torch.nn.Module]] = None   # networks: a fresh instance


def _g(*shape, grad=True):
    return torch.randn(*shape).requires_grad_(grad)


def op_cases(impl: Optional[str] = "ref") -> List[Case]:
    """One case per public op (and its variants whose code differs: no filter, up / down)."""
    f = ganops.setup_filter([1, 3, 3, 1])
    fu, fd = ganops.setup_filter([1, 2, 1]), ganops.setup_filter([1, 2, 1])

    def conv_w():
        return _g(4, 3, 3, 3)

    def D(x):  # a small differentiable critic made of ganops ops
        y = ganops.conv2d_resample(x, D.w, f, down=2, padding=1, impl=impl)
        y = ganops.bias_act(y, D.b, act="lrelu", impl=impl)
        return y.flatten(1).sum(1, keepdim=True)

    torch.manual_seed(0)
    D.w, D.b = _g(4, 3, 3, 3), _g(4)
    pl_G_w = _g(3, 4, 3, 3)
    bias_act_module = ganops.nn.BiasAct(3, act="lrelu", impl=impl)

    def path_length(ws, pl_mean):
        img = ganops.modulated_conv2d(_pl_x(ws), pl_G_w, ws.mean(1).narrow(1, 0, 4), impl=impl)
        return ganops.path_length_penalty(img, ws, pl_mean, noise=torch.ones_like(img), impl=impl)

    def _pl_x(ws):
        return ws.mean(dim=(1, 2)).reshape(-1, 1, 1, 1).expand(-1, 4, 6, 6)

    def r1(x):
        return ganops.r1_penalty(x, D(x), 10.0, impl=impl)

    cases = [
        Case("upfirdn2d", lambda n: (lambda x: ganops.upfirdn2d(x, f, up=2, padding=2, impl=impl), (_g(n, 3, 6, 6),))),
        Case("filter2d", lambda n: (lambda x: ganops.filter2d(x, f, impl=impl), (_g(n, 3, 6, 6),))),
        Case("upsample2d", lambda n: (lambda x: ganops.upsample2d(x, f, impl=impl), (_g(n, 3, 6, 6),))),
        Case("downsample2d", lambda n: (lambda x: ganops.downsample2d(x, f, impl=impl), (_g(n, 3, 6, 6),))),
        Case("bias_act", lambda n: (lambda x, b: ganops.bias_act(x, b, act="lrelu", clamp=0.5, impl=impl),
                                    (_g(n, 3, 5), _g(3)))),
        Case("conv2d_resample", lambda n: (lambda x, w: ganops.conv2d_resample(x, w, f, up=2, padding=1, impl=impl),
                                           (_g(n, 3, 6, 6), conv_w()))),
        Case("modulated_conv2d", lambda n: (lambda x, w, s: ganops.modulated_conv2d(x, w, s, impl=impl),
                                            (_g(n, 3, 6, 6), conv_w(), _g(n, 3)))),
        Case("modulated_conv2d.up", lambda n: (
            lambda x, w, s, b: ganops.modulated_conv2d(x, w, s, up=2, bias=b, act="lrelu", impl=impl),
            (_g(n, 3, 6, 6), conv_w(), _g(n, 3), _g(4)))),
        Case("grid_sample", lambda n: (lambda x, g: ganops.grid_sample(x, g, impl=impl),
                                       (_g(n, 3, 6, 6), (torch.rand(n, 5, 5, 2) * 2 - 1).requires_grad_()))),
        Case("sum_squares", lambda n: (lambda x: ganops.sum_squares(x, 0.5, impl=impl), (_g(n, 3, 4, 4),))),
        Case("filtered_lrelu", lambda n: (
            lambda x, b: ganops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=1, clamp=1.0, impl=impl),
            (_g(n, 3, 6, 6), _g(3)))),
        Case("nn.BiasAct", lambda n: (bias_act_module, (_g(n, 3, 4, 4),)), tuple(bias_act_module.parameters())),
        Case("r1_penalty", lambda n: (r1, (_g(n, 3, 6, 6),)), (D.w, D.b)),
        Case("path_length_penalty", lambda n: (path_length, (_g(n, 2, 8), torch.tensor(0.5))), (pl_G_w,)),
        Case("gradient_penalty", lambda n: (
            lambda real, fake, a: ganops.gradient_penalty(D, real, fake, alpha=a, impl=impl),
            (torch.randn(n, 3, 6, 6), torch.randn(n, 3, 6, 6), torch.rand(n))), (D.w, D.b)),
    ]
    return cases


def network_cases() -> List[Case]:
    """G and D of every model, tiny (float32, reference ops)."""
    from ganops_models.models.dcgan.network import DCGANDiscriminator, DCGANGenerator
    from ganops_models.models.fastgan.network import FastGANDiscriminator, FastGANGenerator
    from ganops_models.models.progan.network import ProGANDiscriminator, ProGANGenerator
    from ganops_models.models.stylegan2.network import Discriminator, Generator
    from ganops_models.models.stylegan3.network import Generator as Generator3

    small = dict(channel_base=256, channel_max=16)
    nets = {
        "stylegan2.G": (lambda: Generator(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, **small), (16,)),
        "stylegan2.D": (lambda: Discriminator(resolution=16, precision="fp32", **small), (3, 16, 16)),
        "stylegan2.D.cond": (lambda: Discriminator(c_dim=3, resolution=16, precision="fp32", mbstd_group_size=0,
                                                   mapping_layers=1, **small), (3, 16, 16)),
        "stylegan3.G": (lambda: Generator3(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8,
                                           num_layers=4, num_critical=1, margin_size=2, precision="fp32"), (8,)),
        "fastgan.G": (lambda: FastGANGenerator(256, z_dim=16, ngf=4), (16,)),
        "fastgan.D": (lambda: FastGANDiscriminator(256, ndf=4), (3, 256, 256)),
        "dcgan.G": (lambda: DCGANGenerator(32, z_dim=10, ngf=4), (10,)),
        "dcgan.D": (lambda: DCGANDiscriminator(32, ndf=4), (3, 32, 32)),
        "progan.G": (lambda: ProGANGenerator(16, z_dim=8, cbase=64, cmax=16), (8,)),
        "progan.D": (lambda: ProGANDiscriminator(16, cbase=64, cmax=16), (3, 16, 16)),
    }
    cases = []
    for name, (build, shape) in nets.items():
        torch.manual_seed(0)
        net = build()
        cond = name.endswith(".cond")

        def make(n, net=net, shape=shape, cond=cond, name=name):
            x = torch.randn(n, *shape, dtype=next(net.parameters()).dtype)
            if cond:
                c = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float()
                return (lambda img, c: net(img, c)), (x.requires_grad_(), c)
            if name.endswith(".G") and "stylegan" in name:
                return (lambda z: net(z, noise_mode="const")), (x,)
            return net, (x.requires_grad_(),)

        cases.append(Case(name, make, params=tuple(net.parameters()), build=build))
    return cases


def _flat(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for t in out if isinstance(t, torch.Tensor)]


def _loss(out) -> torch.Tensor:
    return sum(t.float().sin().sum() for t in _flat(out) if t.requires_grad or t.grad_fn is not None)


def _leaves(args, params) -> List[torch.Tensor]:
    return [t for t in list(args) + list(params) if isinstance(t, torch.Tensor) and t.requires_grad]


def _run(fn, args, params=()) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """Outputs and the gradients of sum(sin(outputs)) with respect to the leaves (zeros where unused)."""
    torch.manual_seed(1)
    out = fn(*args)
    leaves = _leaves(args, params)
    loss = _loss(out)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if leaves and loss.requires_grad else []
    return [t.detach() for t in _flat(out)], [torch.zeros_like(t) if g is None else g for t, g in zip(leaves, grads)]


def count_breaks(case: Case, n: int = 3) -> Tuple[int, List[str]]:
    """Graph breaks of the forward, with their reasons (first line of each)."""
    torch._dynamo.reset()
    fn, args = case.make(n)
    explanation = torch._dynamo.explain(fn)(*args)
    return explanation.graph_break_count, ["break: " + str(b.reason).strip().splitlines()[0]
                                           for b in explanation.break_reasons]


def check_fullgraph(case: Case, n: int = 3, backend: str = "aot_eager", rtol: float = 1e-4,
                    atol: float = 1e-5) -> Optional[str]:
    """None when forward + backward compile with fullgraph=True and match eager, else why not."""
    torch._dynamo.reset()
    fn, args = case.make(n)
    # a forward may update buffers (spectral norm's power iteration, BatchNorm's statistics): both runs
    # start from the same state
    state = copy.deepcopy(fn.state_dict()) if isinstance(fn, torch.nn.Module) else None
    want_out, want_grads = _run(fn, args, case.params)
    if state is not None:
        fn.load_state_dict(state)
    compiled = torch.compile(fn, fullgraph=True, backend=backend)
    try:
        got_out, got_grads = _run(compiled, args, case.params)
    except Exception as exc:  # the reason is the report
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    for kind, want, got in (("output", want_out, got_out), ("gradient", want_grads, got_grads)):
        for i, (a, b) in enumerate(zip(want, got)):
            if not torch.allclose(a, b, rtol=rtol, atol=atol):
                return f"{kind} {i} differs from eager"
    return None


class CountingBackend:
    """A torch.compile backend that counts the graphs it is given (one per compilation)."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


def count_recompiles(case: Case, batches: Sequence[int] = BATCHES, unbacked: bool = False) -> int:
    """Compilations beyond the first when one dynamic=True, fullgraph=True compiled function (the
    function of the first call) is given the arguments made for each batch size. ``unbacked``: the batch dimension of
    every argument is marked unbacked (no 0/1 specialisation, no guard on its value), which lets
    batch size 1 share the graph."""
    torch._dynamo.reset()
    backend = CountingBackend()
    compiled, first, batched = None, 0, None
    for n in batches:
        fn, args = case.make(n)
        if batched is None:   # the arguments with a batch dimension: those of size n in the first call
            batched = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == n]
        if unbacked:
            for i in batched:
                torch._dynamo.decorators.mark_unbacked(args[i], 0)
        if compiled is None:
            compiled = torch.compile(fn, backend=backend, dynamic=True, fullgraph=True)
        compiled(*args)
        first = first or backend.graphs
    return backend.graphs - first


def report(cases: Sequence[Case], out=sys.stdout) -> List[dict]:
    rows = []
    out.write(f"{'case':24s} {'breaks':>6s} {'recompiles':>10s} {'unbacked':>8s}  fullgraph fwd+bwd\n")
    for case in cases:
        breaks, reasons = count_breaks(case)
        counts = []
        for unbacked in (False, True):
            try:
                counts.append(count_recompiles(case, UNBACKED_BATCHES if unbacked else BATCHES, unbacked))
            except Exception as exc:  # the failure is the report
                counts.append("error")
                reasons.append(f"{'unbacked' if unbacked else 'dynamic'}: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0]}")
        fullgraph = check_fullgraph(case)
        rows.append(dict(case=case.name, breaks=breaks, recompiles=counts[0], unbacked=counts[1],
                         fullgraph=fullgraph or "ok", reasons=reasons))
        out.write(f"{case.name:24s} {breaks:6d} {str(counts[0]):>10s} {str(counts[1]):>8s}  {fullgraph or 'ok'}\n")
        for reason in sorted(set(reasons)):
            out.write(f"{'':26s}{reason[:150]}\n")
        out.flush()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="ref", choices=("ref", "triton"), help="backend of the op cases")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    parser.add_argument("--no-networks", action="store_true", help="skip the G / D cases")
    opts = parser.parse_args(argv)
    torch._dynamo.config.recompile_limit = 64
    cases = op_cases(opts.impl) + ([] if opts.no_networks else network_cases())
    if opts.only:
        cases = [c for c in cases if c.name in opts.only]
    print(f"torch {torch.__version__}, impl={opts.impl}; recompiles over batch sizes {BATCHES}, "
          f"unbacked over {UNBACKED_BATCHES}")
    report(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
