"""Test setup: Triton runs through its interpreter on machines without a GPU, outputs are poisoned,
and with GANOPS_TEST_CUDA_EMULATOR=1 (or asan) and no GPU the CUDA kernels run on the CPU through
tests/cuda_emulator."""
import os

import pytest
import torch

if not torch.cuda.is_available():
    # Must be set before any @triton.jit kernel is defined, i.e. before ganops is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ["GANOPS_POISON_OUTPUTS"] = "1"
os.environ.pop("GANOPS_IMPL", None)

from helpers import CUDA_EMULATED  # noqa: E402 (after the environment above; imports no ganops)

if CUDA_EMULATED:
    import cuda_emulator

    cuda_emulator.install()


@pytest.fixture
def one_intraop_thread():
    """One intra-op thread for the model-sized CPU tests: on a shared 2-core machine oversubscribed
    OpenMP threads make them several times slower, and their tensors are too small to gain from more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
