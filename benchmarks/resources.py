"""Resource report: registers, spills and shared memory of every kernel variant, with no GPU.

    python -m benchmarks.resources --arch 90 [--arch 80] [--json OUT.json] [--family F] [--no-fail]

Triton: the launch cases of benchmarks/resource_cases.py drive the real launchers on fake CUDA tensors
(FakeTensorMode) with the launch intercepted (ganops.triton_kernels._launch.intercept); each distinct
specialisation (constexprs, integer/alignment specialisation, num_warps/num_stages) is compiled with
``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))`` and its PTX run through Triton's
ptxas with ``-v``. CUDA: each csrc/cuda/*.cu is compiled with the extension's nvcc flags for sm_<arch>
with ``-Xptxas -v`` (the flags setup.py uses; the .so itself need not contain that arch).

One row per variant and arch: family, backend, kernel, variant, arch, regs, spill_bytes (spill stores
+ loads), smem_bytes (static + Triton's dynamic), grid_ok (every launch of the variant within
x <= 2**31-1, y, z <= 65535; CUDA rows: n/a, their launchers size grids in C++), cases (launches
that map to it) and error. Exit status 1 on a compile error, a spill or a grid over the limits
unless --no-fail. Results are cached under $GANOPS_CACHE/resources (default ~/.cache/ganops), keyed by
the kernel source (Triton's hash of it and its callees) and specialisation, or by the CUDA sources
and flags, so a repeated run recompiles only what changed; compiles run in --jobs processes.
"""
import argparse
import glob
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

os.environ.pop("TRITON_INTERPRET", None)  # compile for the GPU, never interpret

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVCC_FLAGS = ["-O3", "-lineinfo", "--expt-relaxed-constexpr"]  # as setup.py


@dataclass
class Row:
    family: str
    backend: str
    kernel: str
    variant: str
    arch: int
    regs: Optional[int] = None
    spill_bytes: Optional[int] = None
    smem_bytes: Optional[int] = None
    grid_ok: Optional[bool] = None
    cases: int = 0
    vector_loads: str = ""  # Triton: "16-byte vector loads / global loads" in the PTX
    error: str = ""
    failed_grid_cases: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and self.spill_bytes == 0 and self.grid_ok is not False


# --- ptxas -v output --------------------------------------------------------------------------------

_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:.*?, (\d+) bytes smem)?")


def parse_ptxas(log: str) -> Dict[str, dict]:
    """{function: {regs, spill_bytes, smem_bytes}} from ``ptxas -v`` output."""
    out: Dict[str, dict] = {}
    name = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            name = m.group(1)
            out[name] = {"regs": None, "spill_bytes": 0, "smem_bytes": 0}
        elif name and (m := _SPILL.search(line)):
            out[name]["spill_bytes"] = int(m.group(1)) + int(m.group(2))
        elif name and (m := _USED.search(line)):
            out[name]["regs"] = int(m.group(1))
            out[name]["smem_bytes"] = int(m.group(2) or 0)
    return out


def _cache_dir() -> str:
    base = os.environ.get("GANOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganops")
    path = os.path.join(base, "resources")
    os.makedirs(path, exist_ok=True)
    return path


def _cached(key: str, compute):
    path = os.path.join(_cache_dir(), hashlib.sha256(key.encode()).hexdigest() + ".json")
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    value = compute()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(value, fh)
    os.replace(tmp, path)
    return value


# --- Triton -------------------------------------------------------------------------------------------

class _PointerArg:
    """Stands for a fake tensor in Triton's specialisation: its dtype and an address with the
    tensor's offset (allocations are 256-byte aligned, so a 16-byte alignment is a real property)."""

    def __init__(self, t: torch.Tensor):
        self.dtype = t.dtype
        self._ptr = 256 + t.storage_offset() * t.element_size()

    def data_ptr(self) -> int:
        return self._ptr


def collect_launches(families: Optional[List[str]] = None):
    """[(family, case label, Launch)] of every registered case (nothing is allocated or run)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ganops.triton_kernels import _launch

    from .resource_cases import CASES

    launches, errors, current = [], [], [None]
    with FakeTensorMode(), _launch.intercept(lambda l: launches.append(current[0] + (l,))):
        for family, generate in CASES.items():
            if families and family not in families:
                continue
            for label, thunk in generate():
                current[0] = (family, label)
                try:
                    thunk()
                except Exception as e:  # reported as a row; the report goes on
                    errors.append((family, label, f"{type(e).__name__}: {e}"))
    return launches, errors


def _bind(launch, backend):
    from triton.runtime.jit import create_function_from_signature

    kernel = launch.kernel
    args = [_PointerArg(a) if isinstance(a, torch.Tensor) else a for a in launch.args]
    meta = dict(launch.meta)
    meta.setdefault("debug", False)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **meta)
    return kernel._pack_args(backend, meta, bound, specialization, options)


def _variant(kernel, signature, constexprs, attrs, options) -> str:
    names = [p.name for p in kernel.params]
    parts = [f"{names[path[0]]}={value}" for path, value in sorted(constexprs.items())
             if not isinstance(value, str) or len(value) < 24]
    specialised = sorted(names[path[0]] for path, a in attrs.items() if a)
    pointers = sorted({t.lstrip("*") for t in signature.values() if t.startswith("*")})
    parts.append(f"ptr={'/'.join(pointers)} warps={options.num_warps} stages={options.num_stages}")
    if specialised:
        parts.append("div16/" + ",".join(specialised))
    return " ".join(str(p) for p in parts)


def _triton_resources(src, arch: int, options) -> dict:
    """{regs, spill_bytes, smem_bytes, vector_loads} of one specialisation, cached by the kernel's
    source hash (with its callees), the specialisation, the options, the arch and Triton's version."""
    import triton

    key = repr(("triton-v1", triton.__version__, src.fn.cache_key, sorted(src.signature.items()),
                sorted(src.constants.items()), sorted(src.attrs.items()), sorted(options.__dict__.items()), arch))
    return _cached(key, lambda: _compile_triton(src, arch, options))


def _compile_triton(src, arch: int, options) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import sm_arch_from_capability

    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options.__dict__)
    ptx = compiled.asm["ptx"]

    def run_ptxas():
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "kernel.ptx")
            with open(path, "w") as fh:
                fh.write(ptx)
            cmd = [triton.knobs.nvidia.ptxas.path, "-lineinfo", "-v", "--regAllocOptLevel=2",
                   f"--gpu-name={sm_arch_from_capability(arch)}", path, "-o", path + ".cubin"]
            log = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
        (info,) = parse_ptxas(log).values()
        return info

    info = run_ptxas()
    info["smem_bytes"] = max(info["smem_bytes"], int(compiled.metadata.shared))
    loads = re.findall(r"^\s*(?:@%p\d+ )?ld\.global\S*", ptx, flags=re.MULTILINE)
    wide = [op for op in loads if re.search(r"\.v4\.(?:b32|f32|u32)|\.v2\.(?:b64|f64|u64)|\.v8\.(?:b16|f16)", op)]
    info["vector_loads"] = f"{len(wide)}/{len(loads)}"
    return info


def triton_rows(arches: List[int], families: Optional[List[str]] = None, jobs: int = 1) -> List[Row]:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend

    from ganops.triton_kernels._launch import grid_within_limits

    launches, errors = collect_launches(families)
    rows: List[Row] = [Row(f, "triton", "-", label, a, error=err) for f, label, err in errors for a in arches]
    for arch in arches:
        backend = make_backend(GPUTarget("cuda", arch, 32))
        variants: "OrderedDict[str, tuple]" = OrderedDict()
        for family, label, launch in launches:
            options, signature, constexprs, attrs = _bind(launch, backend)
            key = repr((launch.kernel.fn.__qualname__, launch.kernel.fn.__module__, sorted(signature.items()),
                        sorted(constexprs.items()), sorted(attrs.items()), sorted(options.__dict__.items())))
            if key not in variants:
                name = launch.kernel.fn.__name__
                row = Row(family, "triton", name, _variant(launch.kernel, signature, constexprs, attrs, options), arch,
                          grid_ok=True)
                variants[key] = (row, ASTSource(launch.kernel, signature, constexprs, attrs), options)
            row = variants[key][0]
            row.cases += 1
            if not grid_within_limits(launch.grid):
                row.grid_ok = False
                row.failed_grid_cases.append(f"{label}: grid {launch.grid}")
        global _PENDING
        _PENDING = [(src, arch, options) for _, src, options in variants.values()]
        if jobs > 1 and len(_PENDING) > 1:  # fork: the workers inherit the collected sources
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(jobs) as pool:
                results = pool.map(_resources_of, range(len(_PENDING)), chunksize=1)
        else:
            results = [_resources_of(i) for i in range(len(_PENDING))]
        for (row, _, _), result in zip(variants.values(), results):
            if "error" in result:
                row.error = result["error"]
            else:
                row.regs, row.spill_bytes, row.smem_bytes = result["regs"], result["spill_bytes"], result["smem_bytes"]
                row.vector_loads = result["vector_loads"]
            rows.append(row)
    return rows


_PENDING: list = []


def _resources_of(index: int) -> dict:
    src, arch, options = _PENDING[index]
    try:
        return _triton_resources(src, arch, options)
    except Exception as e:  # a compile error is a row of the report
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


# --- CUDA ---------------------------------------------------------------------------------------------

def _demangle(names: List[str]) -> List[str]:
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        return out.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return names


def _split_cuda_name(demangled: str):
    """('tile_kernel', '<float, 1, 1, 2, 2, 4, 4>') from 'void ganops::upfirdn2d::(anon)::tile_kernel<...>(args)'."""
    head = demangled.replace("(anonymous namespace)::", "").split("(")[0]
    m = re.match(r"(?:void )?(?:[\w:]+::)?(\w+)(<.*>)?$", head.strip())
    return (m.group(1), m.group(2) or "") if m else (head, "")


def cuda_rows(arches: List[int], families: Optional[List[str]] = None) -> List[Row]:
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None:
        return [Row("-", "cuda", "-", "-", a, error="no CUDA toolkit (set CUDA_HOME)") for a in arches]
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")
    rows = []
    for source in sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*_kernels.cu"))):
        family = os.path.basename(source)[: -len("_kernels.cu")]
        if families and family not in families:
            continue
        headers = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.h*")))
        text = "".join(open(p).read() for p in [source] + headers)
        for arch in arches:
            def compile_source():
                with tempfile.TemporaryDirectory() as tmp:
                    cmd = [nvcc, "-cubin", f"-arch=sm_{arch}", *NVCC_FLAGS, "-Xptxas", "-v", source,
                           "-o", os.path.join(tmp, "k.cubin")]
                    done = subprocess.run(cmd, capture_output=True, text=True)
                    if done.returncode:
                        return {"error": done.stderr[-2000:]}
                    return {"kernels": parse_ptxas(done.stderr)}
            result = _cached(f"nvcc-v1|{arch}|{NVCC_FLAGS}|{text}", compile_source)
            if "error" in result:
                rows.append(Row(family, "cuda", os.path.basename(source), "-", arch, error=result["error"]))
                continue
            mangled = list(result["kernels"])
            for raw, pretty in zip(mangled, _demangle(mangled)):
                kernel, variant = _split_cuda_name(pretty)
                info = result["kernels"][raw]
                rows.append(Row(family, "cuda", kernel, variant, arch, info["regs"], info["spill_bytes"],
                                info["smem_bytes"], None, 1))
    return rows


# --- report -------------------------------------------------------------------------------------------

def format_table(rows: List[Row]) -> str:
    head = ("family", "backend", "kernel", "variant", "arch", "regs", "spill", "smem", "v16 loads", "grid_ok", "cases",
            "status")
    body = []
    for r in rows:
        status = "ok" if r.ok else ("ERROR " + r.error.splitlines()[0][:80] if r.error else
                                    "SPILL" if r.spill_bytes else "GRID")
        body.append((r.family, r.backend, r.kernel, r.variant[:110], f"sm_{r.arch}", str(r.regs), str(r.spill_bytes),
                     str(r.smem_bytes), r.vector_loads or "-", "n/a" if r.grid_ok is None else str(r.grid_ok),
                     str(r.cases), status))
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line) for line in [head] + body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, action="append", help="compute capability, e.g. 90 (repeatable)")
    parser.add_argument("--json", help="write the rows to this JSON file")
    parser.add_argument("--family", action="append", help="only these kernel families (repeatable)")
    parser.add_argument("--backend", choices=("triton", "cuda"), action="append", help="only these backends")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a variant spills or fails")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiles (default: CPUs)")
    args = parser.parse_args(argv)
    arches = args.arch or [90]
    backends = args.backend or ["triton", "cuda"]
    start = time.time()
    rows: List[Row] = []
    if "triton" in backends:
        rows += triton_rows(arches, args.family, args.jobs)
    if "cuda" in backends:
        rows += cuda_rows(arches, args.family)
    print(format_table(rows))
    bad = [r for r in rows if not r.ok]
    for r in bad:
        for case in r.failed_grid_cases:
            print(f"grid over the limits: {r.kernel}: {case}")
    print(f"{len(rows)} variants ({sum(r.cases for r in rows if r.backend == 'triton')} Triton launches), "
          f"{len(bad)} failing, {time.time() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) | {"ok": r.ok} for r in rows], fh, indent=1)
    return 1 if bad and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
