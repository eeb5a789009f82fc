"""dataset_tool CLI: folder/zip outputs, WxH, labels, --max-images, errors."""
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganops_models.tools import dataset_tool
from ganops_models.data import open_dataset


@pytest.fixture
def source(tmp_path):
    """Six 40x24 RGB images in nested folders (one grayscale), one corrupt file, class labels."""
    rng = np.random.default_rng(1)
    root = tmp_path / "src"
    labels = []
    for k in range(6):
        rel = f"{'ab'[k % 2]}/img{k}.jpg" if k % 3 else f"top{k}.png"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        img = Image.fromarray(arr).convert("L") if k == 4 else Image.fromarray(arr)
        img.save(path)
        labels.append([rel, k % 3])
    (root / "a" / "bad.png").write_bytes(b"\x00garbage" * 20)
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    return str(root), dict(labels)


def _read_dest(dest):
    ds = open_dataset(dest, use_labels=False)
    if dest.endswith(".zip"):
        with zipfile.ZipFile(dest) as zf:
            meta = json.loads(zf.read("dataset.json"))
    else:
        meta = json.load(open(os.path.join(dest, "dataset.json")))
    return ds, meta


@pytest.mark.parametrize("kind", ["dir", "zip"])
def test_cli_writes_dataset_with_labels(source, tmp_path, kind, capsys, caplog):
    src, labels = source
    dest = str(tmp_path / ("out.zip" if kind == "zip" else "out"))
    assert dataset_tool.main(["--source", src, "--dest", dest, "--resolution", "16"]) == 0
    out = capsys.readouterr().out
    assert [r.getMessage().count("'a/bad.png'") for r in caplog.records] == [1]   # reported once, by name
    assert f"wrote 6 images at 16x16 to {dest} with labels; skipped 1 file(s): 'a/bad.png' (UnidentifiedImageError" in out
    assert f"train on it: python -m ganops_models.train --data {dest}" in out
    ds, meta = _read_dest(dest)
    assert len(ds) == 6 and ds.resolution == (16, 16)
    assert ds.names == [f"00000/img{k:08d}.png" for k in range(6)]
    src_ds = open_dataset(src, resolution=16)
    assert [lab for _, lab in meta["labels"]] == [labels[n] for n in src_ds.names]
    for i in range(6):   # PNG output is lossless: identical to fitting the source on the fly
        np.testing.assert_array_equal(ds[i][0], src_ds[i][0])
    assert open_dataset(dest, use_labels=True).label_dim == 3


def test_cli_wxh_transform_and_max_images(source, tmp_path):
    src, _ = source
    dest = str(tmp_path / "wide.zip")
    assert dataset_tool.main(["--source", src, "--dest", dest, "--resolution", "32x8", "--max-images", "3"]) == 0
    ds, meta = _read_dest(dest)
    assert len(ds) == 3 and ds.resolution == (8, 32) and len(meta["labels"]) == 3
    dest2 = str(tmp_path / "letterbox")
    assert dataset_tool.main(["--source", src, "--dest", dest2, "--resolution", "16",
                              "--transform", "center-crop-wide"]) == 0
    img = open_dataset(dest2)[0][0]
    assert (img[:, :4] == 0).all() and (img[:, 12:] == 0).all() and img[:, 4:12].std() > 0


def test_cli_without_labels_writes_null(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    for k in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(root / f"{k}.png")
    dest = str(tmp_path / "plain.zip")
    assert dataset_tool.main(["--source", str(root), "--dest", dest]) == 0
    ds, meta = _read_dest(dest)
    assert meta == {"labels": None} and ds.resolution == (8, 8)


def test_cli_errors(source, tmp_path, capsys):
    src, _ = source
    assert dataset_tool.main(["--source", src, "--dest", str(tmp_path / "x.zip"), "--resolution", "100"]) == 2
    assert "powers of two" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.zip")
    assert dataset_tool.main(["--source", str(tmp_path / "missing"), "--dest", str(tmp_path / "y")]) == 2
    assert "does not exist" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert dataset_tool.main(["--source", src, "--dest", str(busy), "--resolution", "8"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert dataset_tool.main(["--source", src, "--dest", str(tmp_path / "z"), "--max-images", "0"]) == 2
    assert "max_images" in capsys.readouterr().err
