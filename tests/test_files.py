"""The shared file rules: regular files only, paths that stay inside, outputs whole or absent."""
import os

import pytest

from ganops_models.files import atomic_write, inside, regular_file, temporary_path


def test_regular_file_names_the_kind_of_what_is_not_one(tmp_path):
    (tmp_path / "net.pkl").write_bytes(b"x")
    assert regular_file(tmp_path / "net.pkl", "--network") == str(tmp_path / "net.pkl")
    os.mkfifo(tmp_path / "pipe.pkl")
    with pytest.raises(ValueError, match=r"--network: .*pipe\.pkl' is a FIFO \(named pipe\), not a regular file"):
        regular_file(tmp_path / "pipe.pkl", "--network")
    with pytest.raises(ValueError, match="is a folder"):
        regular_file(tmp_path, "--network")
    with pytest.raises(ValueError, match="is a character device"):
        regular_file("/dev/null", "--network")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        regular_file(tmp_path / "missing.pkl", "--network")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(ValueError, match="cannot be read"):
        regular_file(tmp_path / "loop", "--network")


def test_inside_refuses_names_that_climb_out(tmp_path):
    assert inside(tmp_path, "00001-run", "--desc") == str(tmp_path / "00001-run")
    assert inside(tmp_path, "a/../b", "--desc") == str(tmp_path / "b")
    for bad in ("../../elsewhere", "/etc/passwd", "", "a/../..", ".", "x\0y"):
        with pytest.raises(ValueError, match="--desc"):
            inside(tmp_path, bad, "--desc")


def test_outputs_are_whole_or_absent(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise KeyboardInterrupt
    with pytest.raises(RuntimeError):
        with temporary_path(target, ".mp4") as tmp:
            assert tmp.endswith(".mp4") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "wb").write(b"partial")
            raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    with temporary_path(target) as tmp:
        open(tmp, "wb").write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]
