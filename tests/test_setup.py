"""setup.py's advice when torch cannot be imported during the build (no real pip install here)."""
import os
import runpy
import stat
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="setup_under_test")


def test_torch_hidden_by_build_isolation_is_found_and_explained():
    import torch
    outside = SETUP["torch_outside_build_env"](sys.executable)
    assert outside is not None and os.path.samefile(outside, torch.__file__)
    message = SETUP["missing_torch_message"](outside)
    assert "pip install --no-build-isolation -e ." in message and "build isolation hides it" in message
    assert os.path.dirname(torch.__file__) in message and "install torch first" not in message


def test_torch_missing_everywhere_says_install_it_first(tmp_path):
    python = tmp_path / "python"     # an interpreter that finds no torch
    python.write_text("#!/bin/sh\necho\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    assert SETUP["torch_outside_build_env"](str(python)) is None
    assert SETUP["torch_outside_build_env"](str(tmp_path / "missing")) is None
    message = SETUP["missing_torch_message"](None)
    assert message.startswith("ganops compiles against the torch in this environment: install torch first")
