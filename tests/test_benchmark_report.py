"""benchmarks.report on a recorded pytest-benchmark JSON file."""
import json
import pathlib

from benchmarks import report

SAMPLE = pathlib.Path(__file__).parent / "data" / "benchmark_cpu_sample.json"


def test_rows_carry_the_recorded_numbers():
    data = json.loads(SAMPLE.read_text())
    rows = {r["case"]: r for r in report.rows(data)}
    copy = next(b for b in data["benchmarks"] if b["name"] == "test_copy")
    assert rows["copy"]["op"] == "device"
    assert abs(rows["copy"]["time_ms"] - copy["stats"]["median"] * 1e3) < 1e-9
    assert abs(rows["copy"]["gbps"] - copy["extra_info"]["gbps"]) < 1e-9
    assert rows["matmul"]["tflops"] == next(b for b in data["benchmarks"] if b["name"] == "test_matmul")["extra_info"]["tflops"]


def test_markdown_has_header_and_one_line_per_case(tmp_path):
    out = tmp_path / "RESULTS.md"
    assert report.main([str(SAMPLE), "--out", str(out)]) == 0
    text = out.read_text()
    data = json.loads(SAMPLE.read_text())
    assert data["commit_info"]["id"] in text and data["machine_info"]["torch_version"] in text
    table_rows = [line for line in text.splitlines() if line.startswith("| device |")]
    assert len(table_rows) == len(data["benchmarks"])


def test_compact_tables_one_per_family_with_units():
    data = json.loads(SAMPLE.read_text())
    text = report.compact(data)
    families = [line[:-1] for line in text.splitlines() if not line.startswith(" ")]
    assert families == sorted({r["op"] for r in report.rows(data)})
    copy = next(b for b in data["benchmarks"] if b["name"] == "test_copy")
    line = next(line for line in text.splitlines() if line.strip().startswith("copy "))
    assert report._time(copy["stats"]["median"]) in line and f"{copy['extra_info']['gbps']:.3g} GB/s" in line
    assert all(len(line) < 140 for line in text.splitlines())
    assert report._time(0.0123) == "12.3 ms" and report._time(4.5e-5) == "45 us" and report._time(2.0) == "2 s"
