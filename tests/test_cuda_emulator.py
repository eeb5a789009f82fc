"""The CUDA-on-CPU emulator (tests/cuda_emulator) that runs the CUDA kernels' tests without a GPU:
its source translation, and that it computes what a GPU would and reports what a GPU would reject."""
import shutil
import subprocess
from pathlib import Path

import pytest

import cuda_emulator

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
    assert ("::emu::launch(::emu::Config(dim3(a, b), kThreads, smem_bytes, stream), tile<T, 2, 1>, "
            "static_cast<const float*>(x),\n      y, f(g(1)));") in out
    assert "::emu::launch(::emu::Config(1, 32), k, y);" in out
    assert "<<<" not in out


def test_translate_binding_moves_registration_to_cpu():
    source = 'TORCH_CHECK(x.is_cuda(), "x");\nTORCH_LIBRARY_IMPL(ganops, CUDA, m) { m.impl("op", &op); }'
    out = cuda_emulator.translate_binding(source)
    assert "x.is_cpu()" in out and "TORCH_LIBRARY_IMPL(ganops, CPU, m)" in out
    with pytest.raises(RuntimeError, match="TORCH_LIBRARY_IMPL"):
        cuda_emulator.translate_binding("void f() {}")


@pytest.fixture(scope="module")
def selftest_output(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ not found")
    work = tmp_path_factory.mktemp("cuda_emulator")
    source = work / "selftest.cpp"
    source.write_text(cuda_emulator.translate_kernels(SELFTEST.read_text()))
    binary = work / "selftest"
    include = Path(cuda_emulator.__file__).with_name("include")
    subprocess.run([compiler, "-std=c++17", "-O1", f"-I{include}", str(source), "-o", str(binary)], check=True)
    lines = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines()
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines}


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
