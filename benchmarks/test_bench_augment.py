"""ADA AugmentPipe: a whole augmentation step, forward + backward to the images.

The pipe is timed with impl=None (the best backend of grid_sample / upfirdn2d on this device) and
compared with impl='ref'. Parameters are drawn once so every call does the same work (p = 1).
"""
import pytest
import torch

from benchmarks.common import ON_GPU, bench, randn
from ganops_models.augment import AugmentPipe

SHAPE = (32, 3, 256, 256) if ON_GPU else (2, 3, 32, 32)


@pytest.mark.parametrize("preset", ["bgc", "bgcfnc"])
def test_ada_pipe_forward_backward(benchmark, preset):
    x = randn(SHAPE, requires_grad=True)
    pipes = {impl: AugmentPipe(preset, p=1.0, impl=impl).to(x.device) for impl in (None, "ref")}
    params = pipes[None].sample_params(SHAPE[0], x.device, torch.Generator(x.device).manual_seed(0))

    def call(impl):
        def run():
            out = pipes[impl].apply(x, params)
            (grad,) = torch.autograd.grad(out.square().sum(), x)
            return grad
        return run

    image_bytes = x.numel() * x.element_size()
    bench(benchmark, [call(None)], bytes_moved=4 * image_bytes, reference=[call("ref")])
