"""Triton launches: grid limits and the device guard (ganops.triton_kernels._launch).

The launchers run on fake CUDA tensors (FakeTensorMode, no GPU needed) with the launch intercepted, so
the grids of real StyleGAN shapes are computed through the real launchers but never executed (the CPU
interpreter does not check grid limits, a GPU refuses the launch).
"""
import contextlib

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from ganops.triton_kernels import _launch


def _launches(fn, device="cuda"):
    records = []
    with FakeTensorMode(), _launch.intercept(records.append):
        fn(lambda shape, dtype=torch.float32, layout="nchw": _fake(shape, dtype, layout, device))
    assert records, "the launcher launched nothing"
    return records


def _fake(shape, dtype, layout, device):
    t = torch.empty(shape, dtype=dtype, device=device)
    return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else t


def _upfirdn2d_up2(n, c, h, layout, dtype=torch.float16):
    from ganops.triton_kernels import upfirdn2d as K

    def run(make):
        x, f = make((n, c, h, h), dtype, layout), make((4,))
        out = make((n, c, 2 * h, 2 * h), dtype, layout)
        K.upfirdn2d(x, f, out, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
    return run


@pytest.mark.parametrize("n, c, h, layout", [
    (4, 64, 512, "nhwc"),   # channels_last up=2 to 1024x1024 at C=64
    (1, 3, 2048, "nhwc"),   # up=2 to 4096x4096 at C=3
    (1, 3, 4096, "nchw"),   # NCHW up=2 to 8192x8192
    (2, 512, 4096, "nchw"),
])
def test_upfirdn2d_large_grids_within_limits(n, c, h, layout):
    for launch in _launches(_upfirdn2d_up2(n, c, h, layout)):
        assert _launch.grid_within_limits(launch.grid), launch.grid
        assert launch.grid[1] == launch.grid[2] == 1


def test_grid_sample_large_batch_within_limits():
    from ganops.triton_kernels import grid_sample as K

    def run(make):
        grid = make((70000, 8, 8, 2))
        K.gather(make((70000, 3, 8, 8)), grid, 0, 0)
        K.scatter(make((70000, 3, 8, 8)), grid, 8, 8, 1, 0)
    for launch in _launches(run):
        assert _launch.grid_within_limits(launch.grid), launch.grid


def test_grid_sample_blocks_fit_rgb():
    from ganops.triton_kernels import grid_sample as K

    assert K.blocks(3)[1] == 4 and K.blocks(1)[1] == 1 and K.blocks(512)[1] == K.MAX_BLOCK_C


def test_check_grid_rejects_over_limit():
    assert _launch.grid_within_limits((2**31 - 1, 65535, 65535))
    for grid in [(2**31, 1, 1), (1, 65536, 1), (1, 1, 65536)]:
        assert not _launch.grid_within_limits(grid)
        with pytest.raises(ValueError, match="exceeds the CUDA limits"):
            _launch.check_grid(object(), grid)


def _every_launcher(make):
    """One call of every Triton launcher (forward and backward kernels)."""
    from ganops.triton_kernels import bias_act, grid_sample, modulated_conv2d, penalties, upfirdn2d

    x = make((2, 8, 6, 6))
    f = make((4,))
    upfirdn2d.upfirdn2d(x, f, make((2, 8, 12, 12)), 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
    grid = make((2, 6, 6, 2))
    grid_sample.gather(x, grid, 0, 0)
    grid_sample.scatter(x, grid, 6, 6, 0, 0)
    bias_act.forward(x, make((8,)), 1, 2, 0.2, 1.0, -1.0)
    bias_act.grad(x, None, x, make((8,)), 1, 2, 0.2, 1.0, -1.0, False, True)
    penalties.sum_squares(x, 1.0)
    penalties.sum_squares_backward(x, make((2,)), 1.0)
    w, s_in, s_out = make((4, 8, 3, 3)), make((2, 8)), make((2, 4))
    modulated_conv2d.modconv_fwd(x, w, s_in, s_out, None, None, False, 1, 1, 1, 6, 6, 0, 0.0, 1.0, -1.0, False)
    modulated_conv2d.modconv_wgrad(make((2, 4, 6, 6)), x, w, s_out, s_in, 1, 1, 1, False)


def test_every_launch_runs_under_the_tensors_device_guard():
    records = _launches(_every_launcher, device="cuda:1")
    names = {r.kernel.fn.__name__ for r in records}
    assert {"_upfirdn2d_kernel", "_gather_kernel", "_scatter_kernel", "_bias_act_kernel", "_partial_kernel",
            "_final_kernel", "_backward_kernel", "_modconv_fwd_kernel", "_modconv_wgrad_kernel"} <= names
    for r in records:
        assert r.device == torch.device("cuda:1"), (r.kernel.fn.__name__, r.device)


def test_launch_enters_torch_cuda_device(monkeypatch):
    """The real guard is torch.cuda.device(tensor device), entered around the kernel call."""
    events = []

    @contextlib.contextmanager
    def fake_device(device):
        events.append(("enter", device))
        yield
        events.append(("exit", device))

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **meta: events.append(("run", grid, args, meta))

    monkeypatch.setattr(torch.cuda, "device", fake_device)
    _launch.launch(Kernel(), (3, 2), torch.device("cuda", 1), "a", BLOCK=4)
    assert events == [("enter", torch.device("cuda", 1)), ("run", (3, 2, 1), ("a",), {"BLOCK": 4}),
                      ("exit", torch.device("cuda", 1))]
    events.clear()
    _launch.launch(Kernel(), (3,), torch.device("cpu"), "a")  # interpreter: no CUDA guard
    assert events == [("run", (3, 1, 1), ("a",), {})]
    with pytest.raises(ValueError, match="exceeds the CUDA limits"):
        _launch.launch(Kernel(), (1, 70000), torch.device("cuda", 0))
