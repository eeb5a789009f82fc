"""The test suite's own reporting: where each test ran (the session's last line)."""
import helpers


def test_where_it_ran_without_and_with_a_gpu(monkeypatch):
    monkeypatch.setattr(helpers, "HAS_GPU", False)
    assert helpers.where_it_ran({"backend": ("ref", "cpu"), "dtype": 1}, gpu_only=False) == "CPU reference"
    assert helpers.where_it_ran({"backend": ("triton", "cpu")}, gpu_only=False) == "Triton interpreter"
    assert helpers.where_it_ran({"backend": ("cuda", "cpu")}, gpu_only=False) == "CUDA emulator"
    assert helpers.where_it_ran({"impl": "cuda"}, gpu_only=False) == "CUDA emulator"
    assert helpers.where_it_ran({}, gpu_only=False) == "CPU reference"
    monkeypatch.setattr(helpers, "HAS_GPU", True)
    assert helpers.where_it_ran({"backend": ("triton", "cuda")}, gpu_only=False) == "GPU"
    assert helpers.where_it_ran({"backend": ("ref", "cpu")}, gpu_only=False) == "CPU reference"
    assert helpers.where_it_ran({"impl": "triton"}, gpu_only=False) == "GPU"
    assert helpers.where_it_ran({"impl": "ref"}, gpu_only=True) == "GPU"
    assert helpers.where_it_ran({}, gpu_only=False) == "CPU reference"
