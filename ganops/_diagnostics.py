"""What ``python -m ganops`` reports: versions, devices, the extension's build and the backend table."""
import argparse
import importlib
import platform
import sys
from typing import Optional

import torch

from . import _extension, _registry


def _triton_version() -> Optional[str]:
    if _registry.triton_missing_reason():
        return None
    try:
        return importlib.import_module("triton").__version__
    except Exception as exc:  # a broken triton install is worth reporting, not crashing on
        return f"import failed: {exc}"


def _devices() -> list:
    devices = [{"name": "cpu", "type": "cpu"}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({
                "name": f"cuda:{index}", "type": "cuda", "model": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
            })
    return devices


def _backend_table(device: torch.device) -> dict:
    probe = torch.empty(0, device=device)
    table = {}
    for op, backends in sorted(_registry.op_families().items()):
        row = {}
        for backend in _registry.BACKENDS:
            reason = _registry.unavailable_reason(op, backend, probe) if backend in backends else \
                f"{op} has no {backend} implementation"
            row[backend] = {"available": reason is None, "reason": reason}
        row["selected"] = _registry.choose(op, None, probe)
        table[op] = row
    return table


def report() -> dict:
    ext = _extension.status()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return {
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "triton": _triton_version(),
        },
        "triton_interpret": _registry.triton_interpret(),
        "devices": _devices(),
        "extension": {
            "loaded": ext.loaded,
            "cuda_kernels_compiled": bool(ext.build_info.get("with_cuda")),
            "reason": ext.reason,
            "build_info": ext.build_info,
        },
        "backends": {str(device): _backend_table(device) for device in devices},
    }


def format_text(data: dict) -> str:
    lines = ["ganops diagnostics", ""]
    lines += [f"  {name:<8} {value}" for name, value in data["versions"].items()]
    lines.append(f"  TRITON_INTERPRET={int(data['triton_interpret'])}")
    lines += ["", "devices:"]
    for dev in data["devices"]:
        extra = f"  {dev['model']} (sm {dev['capability']}, {dev['memory_gib']} GiB)" if dev["type"] == "cuda" else ""
        lines.append(f"  {dev['name']}{extra}")
    ext = data["extension"]
    lines += ["", "extension ganops._C:"]
    lines.append(f"  loaded: {ext['loaded']}" + (f"  ({ext['reason']})" if ext["reason"] else ""))
    lines.append(f"  CUDA kernels compiled: {ext['cuda_kernels_compiled']}")
    for key, value in ext["build_info"].items():
        lines.append(f"  built {key}: {value}")
    for device, table in data["backends"].items():
        lines += ["", f"backends for {device} tensors (op: selected | backend: available or why not):"]
        for op, row in table.items():
            lines.append(f"  {op}: uses {row['selected']}")
            for backend in _registry.BACKENDS:
                cell = row[backend]
                lines.append(f"      {backend:<7} {'yes' if cell['available'] else 'no: ' + cell['reason']}")
    return "\n".join(lines)


class _ArgumentParser(argparse.ArgumentParser):
    """A usage error is one line, ``python -m ganops: error: <message> (see --help)``, exit status 2
    (ganops_models' tools do the same; ganops cannot import them)."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="python -m ganops",
                             description="What ganops._C was built with and which backend each op uses here.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    return parser


def main(argv=None) -> int:
    """``python -m ganops [--json]``; an unknown argument is a usage error (exit status 2)."""
    args = _parser().parse_args(argv)
    import json

    import ganops  # noqa: F401  (registers every op family)

    data = report()
    print(json.dumps(data, indent=2) if args.json else format_text(data))
    return 0
