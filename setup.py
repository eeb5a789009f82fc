"""Build ganops._C with torch.utils.cpp_extension.

Switches (environment variables):
  GANOPS_BUILD_CUDA=0|1   force the CUDA kernels off/on (default: on when a CUDA toolkit is found
                          and torch is a CUDA build, even without a GPU)
  TORCH_CUDA_ARCH_LIST    e.g. "8.0;9.0" (default: the local GPU's arch, else 8.0;8.6;8.9;9.0)
  MAX_JOBS                parallel compile jobs for ninja
"""
import glob
import json
import os
import platform

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0;8.6;8.9;9.0"


def _cuda_wanted(torch, cuda_home):
    forced = os.environ.get("GANOPS_BUILD_CUDA")
    if forced is not None and forced not in ("0", "1"):
        raise SystemExit(f"GANOPS_BUILD_CUDA must be 0 or 1, got {forced!r}")
    available = cuda_home is not None and torch.version.cuda is not None
    if forced == "1" and not available:
        why = "no CUDA toolkit was found (set CUDA_HOME)" if cuda_home is None else "torch is a CPU-only build"
        raise SystemExit(f"GANOPS_BUILD_CUDA=1 but {why}.")
    return available if forced is None else forced == "1"


def _arch_list(torch):
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"]
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        archs = f"{major}.{minor}"
    else:
        archs = DEFAULT_ARCHS
    os.environ["TORCH_CUDA_ARCH_LIST"] = archs  # read by cpp_extension when it builds -gencode flags
    return archs


def _extensions():
    import torch
    from torch.utils import cpp_extension

    with_cuda = _cuda_wanted(torch, cpp_extension.CUDA_HOME)
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    build_info = {
        "torch_version": torch.__version__,
        "with_cuda": with_cuda,
        "cuda_version": torch.version.cuda if with_cuda else None,
        "cuda_archs": _arch_list(torch) if with_cuda else None,
        "python": platform.python_version(),
    }
    define = json.dumps(json.dumps(build_info))  # a C string literal holding the JSON
    cxx_flags = ["-O3", f"-DGANOPS_BUILD_INFO={define}"]
    if not with_cuda:
        return [cpp_extension.CppExtension("ganops._C", sources, extra_compile_args={"cxx": cxx_flags})]
    sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cpp")))
    sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
    nvcc_flags = ["-O3", "-lineinfo", "--expt-relaxed-constexpr"]
    return [
        cpp_extension.CUDAExtension(
            "ganops._C",
            sources,
            define_macros=[("GANOPS_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
        )
    ]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise SystemExit(
        "ganops compiles against the torch in this environment: install torch first "
        "(pip install torch), then pip install --no-build-isolation -e ."
    ) from exc

setup(ext_modules=_extensions(), cmdclass=_cmdclass())
