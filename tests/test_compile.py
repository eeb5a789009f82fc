"""torch.compile: every public op and every model's G and D trace into one graph (fullgraph=True),
forward and backward, with the values and gradients of eager; the penalties included; fake kernels
exist for every custom op right after ``import ganops``; networks build on the meta device; one
compiled graph serves every batch size.

The cases are those of ``python -m benchmarks.graph_breaks`` (which prints the counts). Compiles use
the "eager" / "aot_eager" backends: they catch graph breaks, recompilations and autograd tracing
without Inductor's C++ compile (one case runs Inductor).
"""
import subprocess
import sys
import textwrap

import pytest
import torch

import ganops
from benchmarks import graph_breaks as gb
from helpers import TRITON_ON_CPU

pytestmark = pytest.mark.usefixtures("one_intraop_thread")

OP_CASES = {c.name: c for c in gb.op_cases("ref")}
NET_CASES = {c.name: c for c in gb.network_cases()}
NETS_ON_META = ("stylegan2.G", "stylegan2.D", "stylegan3.G", "fastgan.G", "fastgan.D", "dcgan.G", "dcgan.D",
                "progan.G", "progan.D")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _assert_one_graph(case, n=3):
    breaks, reasons = gb.count_breaks(case, n)
    assert breaks == 0, reasons
    problem = gb.check_fullgraph(case, n)
    assert problem is None, problem


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_op_one_graph_forward_and_backward(name):
    """No graph break (explain), and fullgraph=True forward + backward equal eager (aot_eager)."""
    _assert_one_graph(OP_CASES[name])


@pytest.mark.skipif(not TRITON_ON_CPU, reason="needs TRITON_INTERPRET=1 (set by conftest without a GPU)")
@pytest.mark.parametrize("name", ["upfirdn2d", "bias_act", "modulated_conv2d.up", "sum_squares", "filtered_lrelu",
                                  "grid_sample"])
def test_triton_op_one_graph(name):
    """The Triton custom ops (through the interpreter) trace as one graph with their fake kernels."""
    cases = {c.name: c for c in gb.op_cases("triton")}
    _assert_one_graph(cases[name], n=2)


def test_gradient_penalty_compiles_in_a_step():
    """The step that consumes gradient_penalty (backward inside, in ganops.trace_autograd()) is one
    graph and matches eager, as the penalty compiled alone does (test_op_one_graph_forward_and_backward)."""
    case = OP_CASES["gradient_penalty"]
    fn, args = case.make(3)
    params = list(case.params)

    def step(real, fake, alpha):
        penalty = fn(real, fake, alpha).mean()
        with ganops.trace_autograd():
            penalty.backward()
        return penalty.detach()

    want = step(*args)
    want_grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    assert torch._dynamo.explain(step)(*args).graph_break_count == 0
    for p in params:
        p.grad = None
    got = torch.compile(step, fullgraph=True, backend="aot_eager")(*args)
    torch.testing.assert_close(got, want)
    for p, g in zip(params, want_grads):
        torch.testing.assert_close(p.grad, g)
        p.grad = None
    assert torch._dynamo.config.trace_autograd_ops is False   # the scope did not leak into the global config


def test_r1_step_with_inductor():
    """The R1 regularisation step (penalty and its backward into D's weights) compiled by Inductor."""
    case = OP_CASES["r1_penalty"]
    fn, (x,) = case.make(4)
    params = list(case.params)

    def step(reals):
        reals = reals.detach().requires_grad_(True)
        penalty = fn(reals).mean()
        with ganops.trace_autograd():
            penalty.backward()
        return penalty.detach()

    want = step(x)
    want_grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    got = torch.compile(step, fullgraph=True)(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for p, g in zip(params, want_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
        p.grad = None


def test_penalties_eager_outside_compile_unchanged():
    """The scope is entered only under torch.compile: in eager nothing imports torch._dynamo."""
    code = textwrap.dedent("""
        import sys, torch, ganops
        x = torch.randn(2, 3, 4, 4, requires_grad=True)
        ganops.r1_penalty(x, (x ** 3).sum(dim=(1, 2, 3)), 1.0).sum().backward()
        print('torch._dynamo' in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", sorted(NET_CASES))
def test_network_one_graph_forward_and_backward(name):
    _assert_one_graph(NET_CASES[name])


@pytest.mark.parametrize("name", sorted(n for n in NET_CASES if ".D" in n))
def test_discriminator_compiles_once_for_every_batch_size(name):
    """dynamic=True: one graph for batch sizes 2, 3, 4, 7 (sizes 0 and 1 are specialised by PyTorch)."""
    assert gb.count_recompiles(NET_CASES[name], (2, 3, 5)) == 0


@pytest.mark.parametrize("name", ["stylegan2.D", "stylegan2.D.cond", "progan.D", "stylegan2.G", "stylegan3.G",
                                  "progan.G", "r1_penalty", "path_length_penalty", "upfirdn2d"])
def test_one_graph_with_batch_one(name):
    """With the batch dimension marked unbacked, batch 1 shares the graph too (no branch on N). (Op cases
    with two batched inputs, e.g. modulated_conv2d's x and styles, would get two unrelated unbacked
    sizes that its argument check must compare; in a network they are one size.)"""
    case = NET_CASES.get(name) or OP_CASES[name]
    assert gb.count_recompiles(case, (1, 3, 4, 7), unbacked=True) == 0


def test_minibatch_std_groups_unchanged():
    """The reshape-free minibatch std equals the gcd(group_size, N) grouping it replaced."""
    import math

    from ganops_models.models.stylegan2.network import MinibatchStdLayer

    def grouped(x, group_size, f):
        n, c, h, w = x.shape
        g = math.gcd(group_size, n) if group_size > 0 else n
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    for group_size in (0, 2, 4):
        for f in (1, 2):
            for n in (1, 2, 3, 4, 6, 8):
                x = torch.randn(n, 4, 3, 2, dtype=torch.float64)
                torch.testing.assert_close(MinibatchStdLayer(group_size, f)(x), grouped(x, group_size, f),
                                           rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NETS_ON_META)
def test_network_builds_on_meta_device(name):
    """Every G and D can be built under torch.device('meta') (shape inference, deferred init)."""
    case = NET_CASES[name]
    build = case.build
    with torch.device("meta"):
        net = build()
    assert all(p.device.type == "meta" for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build().parameters())


def test_fake_kernels_registered_at_import():
    """In a fresh process, right after ``import ganops`` and before any op runs, every ganops custom op
    that returns tensors has a fake (meta) kernel, so tracing never registers one lazily."""
    code = textwrap.dedent("""
        import torch, ganops
        from torch._library.simple_registry import singleton
        ops, missing = 0, []
        for schema in torch._C._jit_get_all_schemas():
            if not schema.name.startswith('ganops::'):
                continue
            if not any(isinstance(r.type, (torch.TensorType, torch.ListType, torch.OptionalType, torch.TupleType))
                       for r in schema.returns):
                continue   # e.g. upfirdn2d_cuda_kernels -> str: a diagnostic, never traced
            ops += 1
            fake = singleton.find(schema.name).fake_impl.kernel is not None
            if not (fake or torch._C._dispatch_has_kernel_for_dispatch_key(schema.name, 'Meta')):
                missing.append(schema.name)
        print(ops, missing)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) >= 10 and out[1].strip() == "[]", out
