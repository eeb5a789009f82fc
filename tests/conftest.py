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

from helpers import CUDA_EMULATED, gpu, where_it_ran  # noqa: E402 (after the environment above; imports no ganops)

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


# --- where the tests ran: one line at the end of the session ---------------------------------------
_PLACES = ("CPU reference", "Triton interpreter", "CUDA emulator", "GPU")
_where = {}       # nodeid -> place, for the collected tests
_ran = {}         # place -> number of tests that ran (passed or failed)


def pytest_collection_modifyitems(items):
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        gpu_only = any(m is gpu.mark or (m.name == "skipif" and m.kwargs.get("reason") == gpu.kwargs["reason"])
                       for m in item.iter_markers("skipif"))
        _where[item.nodeid] = where_it_ran(params, gpu_only)


def pytest_runtest_logreport(report):
    if report.when == "call" and not report.skipped and report.nodeid in _where:
        place = _where[report.nodeid]
        _ran[place] = _ran.get(place, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """E.g. 'ran here: 812 on the CPU reference, 301 through the Triton interpreter, 0 on the CUDA
    emulator, 0 on a GPU'."""
    if not _ran:
        return
    words = {"CPU reference": "on the CPU reference", "Triton interpreter": "through the Triton interpreter",
             "CUDA emulator": "on the CUDA emulator", "GPU": "on a GPU"}
    parts = ", ".join(f"{_ran.get(place, 0)} {words[place]}" for place in _PLACES)
    terminalreporter.write_line(f"ran here: {parts}" + ("" if torch.cuda.is_available() else
                                                         " (no CUDA GPU on this machine)"))
