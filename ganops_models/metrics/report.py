"""metrics.jsonl: one JSON object per evaluation, ``{"kimg": float, "timestamp": float,
"results": {name: value, ...}, ...extra}``, appended and flushed line by line."""
import json
import math
import os
import time


def append_metrics_jsonl(path, kimg, results, **extra):
    """Append one line for the evaluation at ``kimg`` (results: {str: float}); returns the record."""
    if not isinstance(results, dict) or not all(isinstance(k, str) for k in results):
        raise TypeError(f"results: expected a dict of metric name -> float, got {type(results).__name__}")
    values = {k: float(v) for k, v in results.items()}
    record = {"kimg": float(kimg), "timestamp": time.time(), "results": values, **extra}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
    return record


def read_metrics_jsonl(path):
    """All complete records of the file (a torn last line from a killed run is ignored)."""
    records = []
    with open(path, "r", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "kimg" in rec and isinstance(rec.get("results"), dict):
                records.append(rec)
    return records


def series(records):
    """{metric name: [(kimg, value), ...]} sorted by kimg, non-finite values dropped."""
    out = {}
    for rec in records:
        for name, value in rec["results"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                out.setdefault(name, []).append((float(rec["kimg"]), float(value)))
    return {k: sorted(v) for k, v in out.items()}
