"""The CUDA-on-CPU emulator (tests/cuda_emulator) that runs the CUDA kernels' tests without a GPU:
its source translation, and that it computes what a GPU would and reports what a GPU would reject."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import cuda_emulator
import schedule_check

SELFTEST = Path(cuda_emulator.__file__).with_name("selftest_kernels.cu")


def test_translate_kernels_rewrites_launches_and_dynamic_shared():
    source = """
__global__ void k(float* y) { extern __shared__ float smem[]; y[0] = smem[0]; }
void go(float* y, cudaStream_t stream) {
  tile<T, 2, 1><<<dim3(a, b), kThreads, smem_bytes, stream>>>(static_cast<const float*>(x),
      y, f(g(1)));
  k<<<1, 32>>>(y);
}"""
    out = cuda_emulator.translate_kernels(source)
    assert "float* smem = ::emu::dynamic_shared<float>();" in out
    assert ('::emu::launch(::emu::Config(dim3(a, b), kThreads, smem_bytes, stream).named("tile<T, 2, 1>"), '
            "tile<T, 2, 1>, static_cast<const float*>(x),\n      y, f(g(1)));") in out
    assert '::emu::launch(::emu::Config(1, 32).named("k"), k, y);' in out
    assert "<<<" not in out


def test_translate_kernels_poisons_static_shared_arrays_once_per_block():
    source = """
__global__ void k(float* y) {
  __shared__ A warp_sums[kThreads / 32];
  __shared__ alignas(16) float tile[4][8];
  // __shared__ in a comment; is left alone
}"""
    out = cuda_emulator.translate_kernels(source)
    assert "__shared__ A warp_sums[kThreads / 32]; ::emu::poison_static_shared(&warp_sums, sizeof(warp_sums));" in out
    assert "float tile[4][8]; ::emu::poison_static_shared(&tile, sizeof(tile));" in out
    assert "// __shared__ in a comment; is left alone\n" in out


def test_translate_binding_moves_registration_to_cpu():
    source = 'TORCH_CHECK(x.is_cuda(), "x");\nTORCH_LIBRARY_IMPL(ganops, CUDA, m) { m.impl("op", &op); }'
    out = cuda_emulator.translate_binding(source)
    assert "x.is_cpu()" in out and "TORCH_LIBRARY_IMPL(ganops, CPU, m)" in out
    with pytest.raises(RuntimeError, match="TORCH_LIBRARY_IMPL"):
        cuda_emulator.translate_binding("void f() {}")


@pytest.fixture(scope="module")
def selftest_binary(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ not found")
    work = tmp_path_factory.mktemp("cuda_emulator")
    source = work / "selftest.cpp"
    source.write_text(cuda_emulator.translate_kernels(SELFTEST.read_text()))
    binary = work / "selftest"
    include = Path(cuda_emulator.__file__).with_name("include")
    subprocess.run([compiler, "-std=c++17", "-O1", f"-I{include}", str(source), "-o", str(binary)], check=True)
    return binary


def run_selftest(binary, *args, schedule=None):
    env = {k: v for k, v in os.environ.items() if k != cuda_emulator.SCHEDULE_ENV}
    if schedule is not None:
        env[cuda_emulator.SCHEDULE_ENV] = schedule
    lines = subprocess.run([str(binary), *args], check=True, capture_output=True, text=True, env=env,
                           timeout=60).stdout.splitlines()
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines}


@pytest.fixture(scope="module")
def selftest_output(selftest_binary):
    return run_selftest(selftest_binary)


def test_shared_memory_barriers_shuffles_and_atomics(selftest_output):
    assert selftest_output["block_sum"] == "ok"
    total, expected = selftest_output["sum"].split(" expected ")
    assert float(total) == pytest.approx(float(expected)) and float(expected) != 0
    assert selftest_output["fill"] == "ok" and selftest_output["written"] == "2048"


@pytest.mark.parametrize("case, message", [
    ("divergent_barrier", "barrier not reached by every thread"),
    ("early_exit_barrier", "barrier not reached by every thread"),
    ("partial_warp_shuffle", "does not have 32 live threads"),
    ("too_many_threads", "invalid launch configuration"),
    ("grid_y_too_large", "invalid launch configuration"),
    ("too_much_shared", "invalid launch configuration"),
])
def test_reports_what_a_gpu_would_reject(selftest_output, case, message):
    assert message in selftest_output[case]


@pytest.mark.parametrize("schedule", ["reverse", "random:7"])
def test_features_work_under_every_schedule(selftest_binary, schedule):
    output = run_selftest(selftest_binary, schedule=schedule)
    assert output["block_sum"] == "ok" and output["fill"] == "ok" and output["written"] == "2048"
    total, expected = output["sum"].split(" expected ")
    assert float(total) == pytest.approx(float(expected))
    assert "barrier not reached by every thread" in output["divergent_barrier"]


def test_a_bad_schedule_fails_the_launch(selftest_binary):
    output = run_selftest(selftest_binary, schedule="backwards")
    assert "GANOPS_EMU_SCHEDULE must be forward, reverse or random:SEED" in output["block_sum"]


@pytest.fixture(scope="module")
def race_outputs(selftest_binary):
    """{schedule: {case: output bytes}} for the seeded races, under the check's schedules."""
    return {schedule: run_selftest(selftest_binary, "races", schedule=schedule)
            for schedule in ("forward", *schedule_check.OTHER_SCHEDULES)}


def _bytes_by_schedule(race_outputs, case):
    return {schedule: [torch.frombuffer(bytearray.fromhex(out[case]), dtype=torch.float32)]
            for schedule, out in race_outputs.items()}


RACES = ["missing_syncthreads", "warp_synchronous", "cross_block_write", "unwritten_static_shared"]


@pytest.mark.parametrize("case", RACES)
def test_schedule_check_flags_each_seeded_race(race_outputs, case):
    found = schedule_check.differences(_bytes_by_schedule(race_outputs, case + "_bug"))
    assert found and "differ" in found[0]


@pytest.mark.parametrize("case", RACES)
def test_schedule_check_passes_the_correct_versions(race_outputs, case):
    results = _bytes_by_schedule(race_outputs, case + "_ok")
    assert schedule_check.differences(results) == []
    assert torch.isfinite(results["forward"][0]).all()


def test_unwritten_static_shared_memory_is_poisoned_in_every_block(race_outputs):
    for schedule, out in race_outputs.items():
        values = torch.frombuffer(bytearray.fromhex(out["unwritten_static_shared_bug"]), dtype=torch.float32)
        block0, block1 = values[:64], values[64:]
        # slots 32..63 were never written by either block: poison (NaN, or 0x7f bytes under random)
        poison = values.new_tensor([float("nan")]) if not schedule.startswith("random") else \
            torch.frombuffer(bytearray(b"\x7f" * 4), dtype=torch.float32)
        for block in (block0, block1):
            assert torch.equal(block[32:].view(torch.int32), poison.view(torch.int32).expand(32)) or \
                (poison.isnan().all() and block[32:].isnan().all()), schedule
