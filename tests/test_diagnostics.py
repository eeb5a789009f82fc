"""``python -m ganops``: text and JSON reports."""
import json
import subprocess
import sys

import torch

from ganops import _diagnostics, _registry


def test_json_report_lists_every_family_and_backend():
    result = subprocess.run([sys.executable, "-m", "ganops", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["versions"]["torch"] == torch.__version__
    assert "loaded" in data["extension"]
    cpu = data["backends"]["cpu"]
    import ganops  # noqa: F401

    assert set(cpu) == set(_registry.op_families())
    for op, row in cpu.items():
        assert row["selected"] in _registry.BACKENDS
        for backend in _registry.BACKENDS:
            assert row[backend]["available"] == (row[backend]["reason"] is None)


def test_text_report_mentions_extension_and_versions():
    text = _diagnostics.format_text(_diagnostics.report())
    assert "extension ganops._C" in text and "torch" in text and "backends for cpu tensors" in text


def _run_ganops(*args):
    return subprocess.run([sys.executable, "-m", "ganops", *args], capture_output=True, text=True, timeout=300)


def test_unknown_flag_is_a_one_line_usage_error():
    result = _run_ganops("--unknown-flag")
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "python -m ganops: error: unrecognized arguments: --unknown-flag (see --help)"]


def test_help_names_the_json_flag():
    result = _run_ganops("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m ganops [-h] [--json]")
    assert "--json" in result.stdout and "as JSON" in result.stdout


def test_text_report_without_flags():
    result = _run_ganops()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ganops diagnostics") and "backends for cpu tensors" in result.stdout
