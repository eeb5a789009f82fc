"""The schedule-race check (tests/schedule_check.py) on the Triton side: the interpreter runs a launch's
programs in the order GANOPS_TRITON_PROGRAM_ORDER gives, and the check flags a kernel whose programs
store to the same elements without atomics, while correct kernels and atomic sums pass. (The CUDA
side's seeded races are in test_cuda_emulator.py.)"""
import os

import pytest
import torch

import schedule_check
from helpers import HAS_TRITON, TRITON_ON_CPU

interpreted = pytest.mark.skipif(not (HAS_TRITON and TRITON_ON_CPU), reason="needs Triton's interpreter "
                                 "(TRITON_INTERPRET=1, set by conftest.py on machines without a GPU)")

if HAS_TRITON and TRITON_ON_CPU:
    import triton
    import triton.language as tl

    from ganops.triton_kernels import _launch

    @triton.jit
    def run_rank(counter_ptr, rank_ptr):
        """rank[program] = how many programs ran before it."""
        pid = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
        tl.store(rank_ptr + pid, tl.atomic_add(counter_ptr, 1))

    @triton.jit
    def copy_blocks(x_ptr, y_ptr, OVERLAP: tl.constexpr, BLOCK: tl.constexpr):
        """y = x block by block; with OVERLAP every program stores its block to y[0:BLOCK] (the race)."""
        pid = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        value = tl.load(x_ptr + pid * BLOCK + offs)
        tl.store(y_ptr + (0 if OVERLAP else pid * BLOCK) + offs, value)

    @triton.jit
    def sum_blocks(x_ptr, y_ptr, BLOCK: tl.constexpr):
        """y += the blocks of x, one atomic add per element and program."""
        offs = tl.arange(0, BLOCK)
        tl.atomic_add(y_ptr + offs, tl.load(x_ptr + tl.program_id(0) * BLOCK + offs), sem="relaxed")


@pytest.fixture
def checked_launches(monkeypatch):
    monkeypatch.setattr(_launch, "_launcher", schedule_check.triton_launcher(_launch._run))
    monkeypatch.delenv(_launch.PROGRAM_ORDER_ENV, raising=False)


def ranks(order, grid=(3, 4)):
    counter, rank = torch.zeros(1, dtype=torch.int32), torch.full((grid[0] * grid[1],), -1, dtype=torch.int32)
    previous = os.environ.get(_launch.PROGRAM_ORDER_ENV)
    os.environ[_launch.PROGRAM_ORDER_ENV] = order
    try:
        _launch._run(run_rank, grid + (1,), (counter, rank), {})
    finally:
        os.environ.pop(_launch.PROGRAM_ORDER_ENV)
        if previous is not None:
            os.environ[_launch.PROGRAM_ORDER_ENV] = previous
    return rank.tolist()


@interpreted
def test_program_order_runs_every_program_once_in_the_given_order():
    assert ranks("forward") == list(range(12))
    assert ranks("reverse") == list(range(11, -1, -1))
    shuffled = ranks("random:5")
    assert sorted(shuffled) == list(range(12)) and shuffled != list(range(12))
    assert ranks("random:5") == shuffled and ranks("random:6") != shuffled


@interpreted
def test_a_bad_program_order_is_refused():
    with pytest.raises(ValueError, match="GANOPS_TRITON_PROGRAM_ORDER must be forward, reverse or random:SEED"):
        ranks("sideways")


@interpreted
def test_schedule_check_flags_overlapping_triton_stores(checked_launches):
    x, y = torch.arange(64, dtype=torch.float32), torch.zeros(64)
    with pytest.raises(schedule_check.ScheduleMismatch, match=r"copy_blocks: results depend on the schedule.*"
                       r"grid \(4, 1, 1\).*forward and reverse differ"):
        _launch.launch(copy_blocks, (4,), x.device, x, y, OVERLAP=True, BLOCK=16)


@interpreted
def test_schedule_check_passes_disjoint_stores_and_atomic_sums(checked_launches):
    x, y = torch.randn(64), torch.zeros(64)
    _launch.launch(copy_blocks, (4,), x.device, x, y, OVERLAP=False, BLOCK=16)
    assert torch.equal(y, x)
    total = torch.zeros(16)
    _launch.launch(sum_blocks, (4,), x.device, x, total, BLOCK=16)  # float sums in program order: tolerance
    assert schedule_check.uses_atomics(sum_blocks) and not schedule_check.uses_atomics(copy_blocks)
    torch.testing.assert_close(total, x.view(4, 16).sum(0))


def test_differences_are_bitwise_and_atomics_get_a_tolerance():
    a = torch.tensor([1.0, float("nan"), 3.0])
    assert schedule_check.differences({"forward": [a], "reverse": [a.clone()]}) == []
    near = a + torch.tensor([1e-7, 0.0, 0.0])
    assert schedule_check.differences({"forward": [a], "reverse": [near]})
    assert schedule_check.differences({"forward": [a], "reverse": [near]}, atomic=True) == []
    far = a + torch.tensor([1e-2, 0.0, 0.0])  # far more than float32 rounding of sums of magnitude 4
    assert "allowed for atomic sums" in schedule_check.differences({"forward": [a], "random:1": [far]}, atomic=True)[0]
    moved_nan = torch.tensor([float("nan"), 2.0, 3.0])
    assert "NaN in different places" in schedule_check.differences({"forward": [a], "r": [moved_nan]}, atomic=True)[0]


def test_a_mismatch_names_the_kernel_its_launch_and_the_schedules(monkeypatch):
    monkeypatch.delenv("GANOPS_TEST_FAKE_SCHEDULE", raising=False)

    def run(args):  # writes the schedule's name length into its output: schedule-dependent
        args[0].fill_(len(os.environ.get("GANOPS_TEST_FAKE_SCHEDULE", "forward")))

    out = torch.zeros(2)
    with pytest.raises(schedule_check.ScheduleMismatch) as caught:
        schedule_check.run_under_schedules("my_kernel", "GANOPS_TEST_FAKE_SCHEDULE", run, (out,), False,
                                           lambda: "grid (2, 1, 1) block (32, 1, 1)")
    message = str(caught.value)
    assert message.startswith("my_kernel: results depend on the schedule")
    assert "grid (2, 1, 1) block (32, 1, 1)" in message and "forward and random:1 differ" in message
    assert torch.equal(out, torch.full((2,), 7.0))  # the real run is the one under the current schedule
