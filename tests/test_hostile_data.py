"""Hostile datasets (issues 29 and 35): symlink loops, zip bombs, non-UTF-8 names, FIFOs, EXIF
orientation, 16-bit and float images, duplicate and awkward names in zips. Every payload is built
here; a case that could hang or exhaust memory runs in a subprocess with a timeout or a memory limit."""
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganops_models.data import open_dataset
from ganops_models.data.notes import data_notes
from ganops_models.data.source import MAX_FILE_BYTES
from ganops_models.tools import cluster, dataset_tool, train
from ganops_models.training.distributed import DistInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 180   # seconds for a subprocess (it imports torch on a shared machine); a hang fails the test


def _png(value, size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _python(script: str, *args):
    """Run ``script`` in a fresh interpreter (the worktree first on its path); the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=ROOT)


def _packed(zip_path):
    """{name: uint8 array} of the PNGs in a dataset_tool zip, and its dataset.json."""
    with zipfile.ZipFile(zip_path) as z:
        images = {n: np.asarray(Image.open(io.BytesIO(z.read(n)))) for n in sorted(z.namelist()) if n.endswith(".png")}
        return images, json.loads(z.read("dataset.json"))


# ---------------------------------------------------------------- issue 29
def test_symlink_loop_and_second_links_are_read_once(tmp_path, capsys):
    root = tmp_path / "loop"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(_png(10))
    (root / "sub" / "b.png").write_bytes(_png(20))
    os.symlink("..", root / "sub" / "back")              # a folder symlink pointing to its parent
    os.symlink("../a.png", root / "sub" / "alias.png")   # a second link to a file already read
    ds = open_dataset(str(root))
    assert ds.names == ["a.png", "sub/b.png"]
    reasons = dict(ds.skipped)
    assert "symbolic link loop" in reasons["sub/back"] and "'.'" in reasons["sub/back"]
    assert reasons["sub/alias.png"].startswith("the same file as 'a.png'")
    dest = str(tmp_path / "out.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", dest]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 images at 8x8" in out and "skipped 2 file(s): 'sub/alias.png' (the same file as 'a.png'" in out
    images, _ = _packed(dest)
    assert [int(a.mean()) for a in images.values()] == [10, 20]


def _deflate_bomb(path, name: str, size: int) -> None:
    """A zip whose entry ``name`` really inflates to ``size`` zero bytes, from ~size/1000 bytes: one
    deflate block of 1 MiB of zeros, repeated (valid, since every earlier byte is zero too). Only the
    compressed bytes are ever held in memory."""
    chunk = 1 << 20
    assert size % chunk == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_SYNC_FLUSH)
    block = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_SYNC_FLUSH)
    data = first + block * (size // chunk - 1) + comp.flush(zlib.Z_FINISH)
    crc = 0
    zero = bytes(chunk)
    for _ in range(size // chunk):
        crc = zlib.crc32(zero, crc)
    fname = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(fname), 0)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                          len(fname), 0, 0, 0, 0, 0, 0)
    with open(path, "ab") as fh:
        offset = fh.tell()
        fh.write(local + fname + data)
        start = fh.tell()
        fh.write(central[:-4] + struct.pack("<I", offset) + fname)
        fh.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, fh.tell() - start, start, 0))


def test_zip_entry_declaring_2gib_is_skipped_before_it_is_read(tmp_path):
    bomb = str(tmp_path / "bomb.zip")
    _deflate_bomb(bomb, "huge.png", 2 << 30)
    assert os.path.getsize(bomb) < 4 << 20
    with zipfile.ZipFile(bomb) as z:
        assert z.getinfo("huge.png").file_size == 2 << 30 > MAX_FILE_BYTES
    with zipfile.ZipFile(bomb, "a") as z:     # one real image beside the bomb
        z.writestr("ok.png", _png(77))
    dest = str(tmp_path / "out.zip")
    # The child may use 1 GiB more address space than it has after its imports: reading the 2 GiB
    # entry fails there, so an exit 0 with the message below shows it was never read.
    result = _python("""
        import resource, sys
        from ganops_models.tools import dataset_tool
        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        status = dataset_tool.main(["--source", sys.argv[1], "--dest", sys.argv[2]])
        print("grew KiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        sys.exit(status)
    """, bomb, dest)
    assert result.returncode == 0, result.stderr[-2000:]
    grew = int(result.stdout.split("grew KiB ")[1].split()[0])
    assert grew < 64 << 10, f"the peak memory grew by {grew} KiB: the entry was read"
    assert ("wrote 1 images at 8x8" in result.stdout and "skipped 1 file(s): 'huge.png' (the entry declares "
            f"2147483648 bytes, more than the {MAX_FILE_BYTES} bytes allowed for one image file" in result.stdout)
    images, _ = _packed(dest)
    assert [int(a.mean()) for a in images.values()] == [77]


def test_non_utf8_names_are_read_shown_escaped_and_round_trip(tmp_path, capsys):
    root = tmp_path / "names"
    root.mkdir()
    rng = np.random.default_rng(0)
    for k, name in enumerate([b"caf\xe9.png", b"ok.png", b"zz.png"]):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(os.path.join(bytes(root), name))
    with open(os.path.join(bytes(root), b"bad\xff.png"), "wb") as fh:
        fh.write(b"not an image")
    outdir = str(tmp_path / "clusters")
    assert cluster.main(["--source", str(root), "--k", "2", "--features", "color", "--outdir", outdir,
                         "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "3 images in 2 clusters" in out and "skipped 1 file(s): 'bad\\xff.png' (UnidentifiedImageError" in out
    with open(os.path.join(outdir, "clusters.csv"), "rb") as fh:
        csv_bytes = fh.read()
    assert b"\ncaf\xe9.png," in csv_bytes      # the file's own name, byte for byte
    dest = str(tmp_path / "sel.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", dest, "--clusters",
                              os.path.join(outdir, "clusters.csv"), "--keep-clusters", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "packing 3 image(s)" in out and "wrote 3 images" in out and "'bad\\xff.png'" in out
    assert len(_packed(dest)[0]) == 3


# ---------------------------------------------------------------- issue 35
def test_fifo_in_the_dataset_is_skipped_by_kind_never_opened(tmp_path):
    root = tmp_path / "fifo"
    root.mkdir()
    (root / "a.png").write_bytes(_png(10))
    (root / "b.png").write_bytes(_png(20))
    os.mkfifo(root / "pipe.png")
    os.mkfifo(tmp_path / "data.zip")
    result = _python("""
        import sys
        from ganops_models.data import open_dataset
        from ganops_models.data.notes import data_notes
        from ganops_models.data.source import FolderSource
        from ganops_models.errors import DatasetError
        from ganops_models.tools import dataset_tool, train
        root, dest, fifo_zip = sys.argv[1:]
        ds = open_dataset(root)
        print("names", ds.names)
        print("note", data_notes(ds, "ada", True)[0])
        try:
            FolderSource(root).open("pipe.png")     # the FIFO appears after listing: refused, not waited on
        except DatasetError as exc:
            print("open:", exc)
        print("tool", dataset_tool.main(["--source", root, "--dest", dest]))
        print("zip", dataset_tool.main(["--source", fifo_zip, "--dest", dest + "2"]))
        print("train", train.main(["--data", root, "--dry-run"]))
    """, str(root), str(tmp_path / "out.zip"), str(tmp_path / "data.zip"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "names ['a.png', 'b.png']" in out
    assert "note skipped 1 file(s): 'pipe.png' (a FIFO (named pipe), not a regular file)" in out
    assert "open: " in out and "pipe.png' is a FIFO (named pipe), not a regular file" in out
    assert "wrote 2 images" in out and "tool 0" in out
    assert "zip 2" in out and "data.zip' is a FIFO (named pipe), not a regular file" in result.stderr
    assert "train 0" in out and "skipping 'pipe.png' (a FIFO (named pipe)" in result.stderr
    assert [int(a.mean()) for a in _packed(tmp_path / "out.zip")[0].values()] == [10, 20]


def test_exif_orientation_applied_unless_turned_off(tmp_path, capsys):
    root = tmp_path / "phone"
    root.mkdir()
    stored = np.zeros((16, 32, 3), np.uint8)    # stored 32 wide, 16 high: left half red, right half blue
    stored[:, :16] = (255, 0, 0)
    stored[:, 16:] = (0, 0, 255)
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6                            # a viewer turns it 90 degrees clockwise: 16 wide, 32 high
    img.save(root / "photo.jpg", quality=95, exif=exif)
    ds = open_dataset(str(root))
    assert ds.resolution == (32, 16) and ds.sizes == [(16, 32)]
    upright = ds[0][0]                          # [3, 32, 16]: red on top, blue below
    assert upright[0, :14].min() > 200 and upright[2, :14].max() < 60
    assert upright[2, 18:].min() > 200 and upright[0, 18:].max() < 60
    dest = str(tmp_path / "upright.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", dest]) == 0
    assert "wrote 1 images at 16x32" in capsys.readouterr().out
    raw = str(tmp_path / "raw.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", raw, "--no-exif-transpose"]) == 0
    assert "wrote 1 images at 32x16" in capsys.readouterr().out
    (packed,) = _packed(raw)[0].values()
    assert packed.shape == (16, 32, 3)
    assert packed[:, :14, 0].min() > 200 and packed[:, 18:, 2].min() > 200   # as stored: red left, blue right
    np.testing.assert_array_equal(packed, np.asarray(Image.open(root / "photo.jpg").convert("RGB")))
    for flag, resolution in (([], (32, 16)), (["--exif-transpose=0"], (16, 32))):   # train reads them alike
        args = train.build_parser().parse_args(["--data", str(root), "--device", "cpu", "--resolution",
                                                "16x32" if not flag else "32x16"] + flag)
        _, _, (dataset, info), _, _ = train.prepare(args, DistInfo(), torch.device("cpu"))
        assert info.resolution == resolution and dataset.exif_transpose == (not flag)
        image = dataset[0][0]
        red, blue = (image[:, :14], image[:, 18:]) if not flag else (image[:, :, :14], image[:, :, 18:])
        assert red[0].min() > 200 and blue[2].min() > 200


def test_16bit_and_float_images_scaled_by_their_range(tmp_path, capsys):
    root = tmp_path / "deep"
    root.mkdir()
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / "a16.png")
    assert Image.open(root / "a16.png").mode == "I;16"
    Image.fromarray(np.full((8, 8), 0.75, np.float32)).save(root / "b_float.tif")
    Image.fromarray(np.full((8, 8), 1.5, np.float32)).save(root / "c_hdr.tif")
    Image.fromarray(np.full((8, 8), 70000, np.int32)).save(root / "d_int32.tif")
    assert Image.open(root / "b_float.tif").mode == "F" and Image.open(root / "d_int32.tif").mode == "I"
    dest = str(tmp_path / "out.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", dest]) == 0
    out = capsys.readouterr().out
    assert ("wrote 2 images at 8x8 to" in out and "skipped 2 file(s): 'c_hdr.tif' (DatasetError: a floating-point "
            "image with values from 1.5 to 1.5: only values in [0, 1] are understood" in out)
    assert ("'d_int32.tif' (DatasetError: a 32-bit integer image with values from 70000 to 70000: only 8- and "
            "16-bit images are understood" in out)
    a16, b_float = _packed(dest)[0].values()
    assert (a16 == round(40000 * 255 / 65535)).all()      # 156
    assert (b_float == 191).all()                          # 0.75 * 255


def test_zip_duplicate_backslash_newline_and_long_names(tmp_path, capsys):
    src = str(tmp_path / "awkward.zip")
    long_name = "l" * 300 + ".png"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("a.png", _png(10))
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("a.png", _png(20))       # the one unzip leaves
        z.writestr("photos\\b.png", _png(30))   # made on Windows
        z.writestr("new\nline.png", _png(40))
        z.writestr(long_name, _png(50))
        z.writestr("dataset.json", json.dumps({"labels": [["a.png", 0], ["photos/b.png", 1], ["new\nline.png", 2],
                                                          [long_name, 3]]}))
    dest = str(tmp_path / "out.zip")
    assert dataset_tool.main(["--source", src, "--dest", dest]) == 0
    out = capsys.readouterr().out
    assert ("wrote 4 images at 8x8 to " + dest + " with labels; skipped 1 file(s): 'a.png' (another entry of the "
            "zip has the same name; only the last one is read" in out)
    images, meta = _packed(dest)
    assert [int(a.mean()) for a in images.values()] == [20, 50, 40, 30]   # a, l..., new\nline, photos/b
    assert [label for _, label in meta["labels"]] == [0, 3, 2, 1]


def test_folder_newline_and_long_names_are_read(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    long_name = "x" * 251 + ".png"              # 255 bytes, the longest name ext4 allows
    for k, name in enumerate(["new\nline.png", long_name, "plain.png"]):
        (root / name).write_bytes(_png(10 * (k + 1)))
    ds = open_dataset(str(root))
    assert ds.names == ["new\nline.png", "plain.png", long_name] and not ds.skipped
    assert [int(ds[i][0].mean()) for i in range(3)] == [10, 30, 20]
    assert data_notes(ds, "ada", True) == ["warning: only 3 training images; a GAN this data-starved soon memorises "
                                           "them or collapses; a few hundred or more images give much better results"]
