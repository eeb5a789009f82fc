"""Turn pytest-benchmark JSON into a markdown table, and the compact per-family tables printed at the
end of ``pytest benchmarks --benchmark-only`` (:func:`compact`).

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python -m benchmarks.report bench.json [--out benchmarks/RESULTS.md]

Columns: op, case, backend, median time, GB/s, TFLOP/s, % of the measured roofline, speed-up against
the reference backend. The header records device, torch/triton versions, commit and date, all read
from the JSON file itself (never typed by hand).
"""
import argparse
import json
import re
import sys


def _split_name(bench: dict):
    """('bias_act', 'fwd[...]', backend) from a benchmark entry."""
    module = bench.get("fullname", "").split("::")[0]
    op = re.sub(r"^.*test_bench_|\.py$", "", module) or bench.get("group") or "?"
    params = bench.get("params") or {}
    backend = str(params.get("backend", "")) or "-"
    case = bench["name"].split("[")[0].replace("test_", "")
    rest = {k: v for k, v in params.items() if k != "backend"}
    if rest:
        case += " " + " ".join(f"{k}={_short(v)}" for k, v in rest.items())
    return op, case, backend


def _short(value) -> str:
    text = str(value).replace("torch.", "")
    return text if len(text) <= 40 else text[:37] + "..."


def _fmt(value, spec, suffix=""):
    return "" if value is None else format(value, spec) + suffix


def rows(data: dict) -> list:
    out = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        median_s = bench["stats"]["median"]
        op, case, backend = _split_name(bench)
        roof = info.get("copy_fraction")
        if info.get("matmul_fraction") is not None and (roof is None or info["matmul_fraction"] > roof):
            roof = info["matmul_fraction"]
        test_id = bench["name"].replace("test_", "", 1).replace(f"-{backend}]", "]").replace(f"[{backend}]", "")
        out.append({
            "op": op, "case": case, "id": test_id, "backend": backend, "time_ms": median_s * 1e3,
            "gbps": info.get("gbps"), "tflops": info.get("tflops"),
            "roofline_pct": None if roof is None else 100 * roof,
            "speedup": info.get("speedup_vs_ref"),
        })
    return sorted(out, key=lambda r: (r["op"], r["case"], r["backend"]))


def header(data: dict) -> str:
    machine = data.get("machine_info", {})
    commit = data.get("commit_info", {})
    devices = sorted({b.get("extra_info", {}).get("device", "?") for b in data.get("benchmarks", [])})
    lines = [
        f"- date: {data.get('datetime', '?')}",
        f"- device: {', '.join(devices) or '?'}",
        f"- torch: {machine.get('torch_version', '?')}, triton: {machine.get('triton_version', '?')}, "
        f"CUDA: {machine.get('cuda_version', '?')}, driver: {machine.get('gpu_driver', '?')}",
        f"- commit: {commit.get('id', '?')}{' (dirty)' if commit.get('dirty') else ''}",
        f"- python: {machine.get('python_version', '?')}, host CPU: {machine.get('cpu', {}).get('brand_raw', '?')}",
    ]
    return "\n".join(lines)


def markdown(data: dict) -> str:
    table = ["| op | case | backend | time (ms) | GB/s | TFLOP/s | % roofline | speed-up vs ref |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows(data):
        table.append(
            f"| {r['op']} | {r['case']} | {r['backend']} | {r['time_ms']:.4g} | {_fmt(r['gbps'], '.1f')} | "
            f"{_fmt(r['tflops'], '.2f')} | {_fmt(r['roofline_pct'], '.0f', '%')} | {_fmt(r['speedup'], '.2f', 'x')} |")
    return "# ganops benchmark results\n\n" + header(data) + "\n\n" + "\n".join(table) + "\n"


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def compact(data: dict) -> str:
    """One small table per family (op): case, backend, median time, GB/s or TFLOP/s (whichever is the
    case's roofline), % of roofline, speed-up over the reference backend."""
    by_op = {}
    for r in rows(data):
        by_op.setdefault(r["op"], []).append(r)
    out = []
    for op, op_rows in by_op.items():
        table = [("case", "backend", "time", "rate", "% roofline", "vs ref")]
        for r in op_rows:
            rate = f"{r['tflops']:.3g} TFLOP/s" if r["tflops"] is not None and r["gbps"] is None else (
                _fmt(r["gbps"], ".3g", " GB/s"))
            table.append((r["id"], r["backend"], _time(r["time_ms"] / 1e3), rate,
                          _fmt(r["roofline_pct"], ".0f", "%"), _fmt(r["speedup"], ".2f", "x")))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        out.append(f"{op}:")
        out += ["  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                                 enumerate(zip(row, widths))).rstrip() for row in table]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file")
    parser.add_argument("--out", help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    with open(args.json_file) as fh:
        data = json.load(fh)
    text = markdown(data)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
