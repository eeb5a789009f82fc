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
import subprocess
import sys

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


def torch_outside_build_env(python=sys.executable):
    """Where this interpreter finds torch outside pip's isolated build environment, or None: pip hides
    the environment's site-packages through PYTHONPATH, which ``python -I`` ignores."""
    code = "import importlib.util as u; s = u.find_spec('torch'); print(s.origin if s else '')"
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def missing_torch_message(outside):
    """What to do when ``import torch`` fails in the build; ``outside``: :func:`torch_outside_build_env`."""
    if outside:
        return (f"torch is installed ({os.path.dirname(outside)}), but pip's build isolation hides it from this "
                f"build. ganops compiles its extension against the torch of your environment, so install with\n"
                f"    pip install --no-build-isolation -e .\n"
                f"(with isolation pip would download another torch into a temporary environment and build against "
                f"it; the result need not load with yours)")
    return ("ganops compiles against the torch in this environment: install torch first (pip install torch), "
            "then pip install --no-build-isolation -e .")


if __name__ == "__main__":   # also under pip / setuptools.build_meta; tests load this file under another name
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise SystemExit(missing_torch_message(torch_outside_build_env())) from exc
    setup(ext_modules=_extensions(), cmdclass=_cmdclass())
