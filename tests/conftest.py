"""Test setup: Triton runs through its interpreter on machines without a GPU, outputs are poisoned,
with GANOPS_TEST_CUDA_EMULATOR=1 (or asan) and no GPU the CUDA kernels run on the CPU through
tests/cuda_emulator, and with GANOPS_TEST_SCHEDULE_CHECK=1 every emulated CUDA launch and every
interpreted Triton launch is also run under other schedules and compared (tests/schedule_check.py)."""
import os

import pytest
import torch

if not torch.cuda.is_available():
    # Must be set before any @triton.jit kernel is defined, i.e. before ganops is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ["GANOPS_POISON_OUTPUTS"] = "1"
os.environ.pop("GANOPS_IMPL", None)

from helpers import CUDA_EMULATED, TRITON_ON_CPU, gpu, where_it_ran  # noqa: E402 (after the environment above; imports no ganops)

if CUDA_EMULATED:
    import cuda_emulator

    cuda_emulator.install()

SCHEDULE_CHECK = os.environ.get("GANOPS_TEST_SCHEDULE_CHECK") == "1"
if SCHEDULE_CHECK and TRITON_ON_CPU:
    import schedule_check
    from ganops.triton_kernels import _launch

    _launch._launcher = schedule_check.triton_launcher(_launch._run)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Under GANOPS_TEST_SCHEDULE_CHECK=1 with the emulator, the test's CUDA op calls are schedule-checked."""
    if SCHEDULE_CHECK and CUDA_EMULATED:
        import schedule_check

        with schedule_check.cuda_emulator_mode():
            yield
    else:
        yield


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


@pytest.fixture
def backend_flags():
    """Restore the process-wide torch.backends flags a training run sets."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
