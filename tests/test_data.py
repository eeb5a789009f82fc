"""Data pipeline: sources, conversion, resizing, labels, corrupt files, built-in dataset, loader."""
import json
import logging
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganops_models.data import builtin as builtin_dataset
from ganops_models.data import InfiniteSampler, images_to_float, make_loader, open_dataset
from ganops_models.errors import DatasetError
from ganops_models.data.image import parse_resolution
from helpers import gpu

MONET = "/work/shared/data/monet256"


def _rand_rgb(rng, h, w):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write(root, rel, arr, mode="RGB"):
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Five 16x16 PNGs, two of them in nested folders; returns (root, {relpath: array})."""
    rng = np.random.default_rng(0)
    root = str(tmp_path / "imgs")
    images = {}
    for rel in ("a.png", "b.png", "sub/c.png", "sub/deeper/d.png", "e.png"):
        images[rel] = _rand_rgb(rng, 16, 16)
        _write(root, rel, images[rel])
    return root, images


def _zip_folder(root, zip_path):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for dirpath, _, files in os.walk(root):
            for f in files:
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, root).replace(os.sep, "/"))
    return zip_path


def test_folder_recursive_reads_exact_pixels(folder):
    root, images = folder
    ds = open_dataset(root)
    assert ds.names == sorted(images)
    assert len(ds) == 5 and ds.resolution == (16, 16) and ds.num_channels == 3
    assert ds.label_dim == 0 and not ds.has_labels and ds.name == "imgs"
    for i, name in enumerate(ds.names):
        img, label = ds[i]
        assert img.dtype == np.uint8 and img.shape == (3, 16, 16) and label.shape == (0,)
        np.testing.assert_array_equal(img, images[name].transpose(2, 0, 1))


def test_zip_matches_folder(folder, tmp_path):
    root, images = folder
    ds_zip = open_dataset(_zip_folder(root, str(tmp_path / "imgs.zip")))
    ds_dir = open_dataset(root)
    assert ds_zip.names == ds_dir.names and ds_zip.name == "imgs"
    for i in range(len(ds_dir)):
        np.testing.assert_array_equal(ds_zip[i][0], ds_dir[i][0])


def test_mirror_appends_flipped_copies(folder):
    root, _ = folder
    ds = open_dataset(root, mirror=True)
    assert len(ds) == 10
    for i in range(5):
        np.testing.assert_array_equal(ds[i + 5][0], ds[i][0][:, :, ::-1])


def test_dataset_json_class_labels_one_hot(folder, tmp_path):
    root, images = folder
    classes = {name: k % 3 for k, name in enumerate(sorted(images))}
    with open(os.path.join(root, "dataset.json"), "w") as fh:
        json.dump({"labels": [[n, c] for n, c in classes.items()]}, fh)
    for path in (root, _zip_folder(root, str(tmp_path / "l.zip"))):
        ds = open_dataset(path, use_labels=True)
        assert ds.has_labels and ds.label_dim == 3
        for i, name in enumerate(ds.names):
            expect = np.zeros(3, np.float32)
            expect[classes[name]] = 1
            np.testing.assert_array_equal(ds[i][1], expect)
    assert open_dataset(root, use_labels=False).label_dim == 0


def test_dataset_json_vector_labels_and_errors(folder):
    root, images = folder
    names = sorted(images)
    meta = os.path.join(root, "dataset.json")
    with open(meta, "w") as fh:
        json.dump({"labels": [[n, [0.5 * k, -1.0]] for k, n in enumerate(names)]}, fh)
    ds = open_dataset(root, use_labels=True)
    np.testing.assert_allclose(ds[3][1], [1.5, -1.0])
    with open(meta, "w") as fh:
        json.dump({"labels": [[n, 0] for n in names[1:]]}, fh)
    with pytest.raises(DatasetError, match="no label for 1 image"):
        open_dataset(root, use_labels=True)
    os.remove(meta)
    with pytest.raises(DatasetError, match="use_labels=True but .* has no labels"):
        open_dataset(root, use_labels=True)


def test_grayscale_rgba_and_16bit_become_rgb(tmp_path):
    root = str(tmp_path / "modes")
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    _write(root, "gray.png", gray, "L")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255           # top half opaque red, bottom half transparent (-> white)
    _write(root, "rgba.png", rgba, "RGBA")
    Image.fromarray(gray.astype(np.uint16) * 257).save(os.path.join(root, "deep.png"))
    ds = open_dataset(root)
    by_name = {n: ds[i][0] for i, n in enumerate(ds.names)}
    for name in ("gray.png", "deep.png"):
        np.testing.assert_array_equal(by_name[name], np.broadcast_to(gray, (3, 8, 8)))
    np.testing.assert_array_equal(by_name["rgba.png"][:, :4], np.broadcast_to(np.array([200, 0, 0])[:, None, None], (3, 4, 8)))
    assert (by_name["rgba.png"][:, 4:] == 255).all()


def test_resize_on_the_fly_center_crops_to_aspect(tmp_path):
    root = str(tmp_path / "wide")
    arr = np.zeros((32, 48, 3), np.uint8)
    arr[:, :8] = (0, 255, 0)       # cropped away by the centre crop to 32x32
    arr[:, 8:24] = (255, 0, 0)
    arr[:, 24:40] = (0, 0, 255)
    arr[:, 40:] = (0, 255, 0)      # cropped away
    _write(root, "x.png", arr)
    with pytest.raises(DatasetError, match="48x32.*not a power of two.*--resolution"):
        open_dataset(root)
    ds = open_dataset(root, resolution=16)
    img = ds[0][0]
    assert img.shape == (3, 16, 16) and ds.resolution == (16, 16)
    assert img[1].max() <= 2, "the green side bands must be cropped away"
    assert (img[0, :, :7] >= 250).all() and (img[2, :, 9:] >= 250).all()
    assert open_dataset(root, resolution="8x4")[0][0].shape == (3, 4, 8)


def test_corrupt_file_skipped_at_index_time(folder, caplog):
    root, images = folder
    with open(os.path.join(root, "sub", "broken.png"), "wb") as fh:
        fh.write(b"this is not an image at all" * 10)
    with caplog.at_level(logging.WARNING, logger="ganops_models.data"):
        ds = open_dataset(root)
    assert len(ds) == 5 and "sub/broken.png" not in ds.names
    assert [name for name, _ in ds.skipped] == ["sub/broken.png"]
    assert "sub/broken.png" in caplog.text


def test_truncated_file_replaced_at_load_time_and_reported_once(folder, caplog):
    root, images = folder
    full = open(os.path.join(root, "b.png"), "rb").read()
    with open(os.path.join(root, "b.png"), "wb") as fh:
        fh.write(full[: len(full) // 2])                         # header intact, pixel data cut
    ds = open_dataset(root)
    assert "b.png" in ds.names and not ds.skipped, "the header is readable, so it is indexed"
    i = ds.names.index("b.png")
    with caplog.at_level(logging.WARNING, logger="ganops_models.data"):
        first = ds[i]
        second = ds[i]
    np.testing.assert_array_equal(first[0], images[ds.names[i + 1]].transpose(2, 0, 1))
    np.testing.assert_array_equal(second[0], first[0])
    assert list(ds.load_failures) == ["b.png"]
    assert caplog.text.count("b.png") == 1


def test_missing_empty_and_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        open_dataset(str(tmp_path / "empty"))
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a zip"):
        open_dataset(str(tmp_path / "file.txt"))
    with pytest.raises(DatasetError, match="powers of two"):
        open_dataset(str(tmp_path / "empty"), resolution=100)
    with pytest.raises(DatasetError, match="powers of two"):
        parse_resolution("256x100")
    with pytest.raises(DatasetError, match="'W' or 'WxH'"):
        parse_resolution("big")
    assert issubclass(DatasetError, ValueError)
    assert parse_resolution("256x128") == (128, 256) and parse_resolution(64) == (64, 64)


def test_builtin_dataset_deterministic_and_sized(tmp_path, monkeypatch):
    a, b, c = (str(tmp_path / f"{k}.zip") for k in "abc")
    builtin_dataset.write_zip(a, seed=3, num_images=12)
    builtin_dataset.write_zip(b, seed=3, num_images=12)
    builtin_dataset.write_zip(c, seed=4, num_images=12)
    assert open(a, "rb").read() == open(b, "rb").read()
    assert open(a, "rb").read() != open(c, "rb").read()
    ds = open_dataset(a, use_labels=True)
    assert len(ds) == 12 and ds.resolution == (64, 64) and ds.label_dim == len(builtin_dataset.CLASSES)
    pixels = np.stack([ds[i][0] for i in range(12)]).astype(np.float64)
    assert pixels.std() > 30, "images must not be flat"
    # One large shape in a contrasting colour covers the centre of every image, not its corners.
    centre = pixels[:, :, 30:34, 30:34].mean(axis=(2, 3))                  # [N, 3] (images are CHW)
    corners = pixels[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]                 # [N, 3, 4]
    contrast = np.linalg.norm(centre[:, :, None] - corners, axis=1).min(axis=1)
    assert (contrast > 40).all(), f"the shape must stand out from the background: {contrast.round()}"
    # ensure() writes into $GANOPS_CACHE once and reuses the file; open_dataset(None) uses it.
    monkeypatch.setenv("GANOPS_CACHE", str(tmp_path / "cache"))
    path = builtin_dataset.ensure(seed=3, num_images=12)
    assert path.startswith(str(tmp_path / "cache")) and open(path, "rb").read() == open(a, "rb").read()
    stamp = os.stat(path).st_mtime_ns
    assert builtin_dataset.ensure(seed=3, num_images=12) == path and os.stat(path).st_mtime_ns == stamp
    assert not [f for f in os.listdir(tmp_path / "cache") if f.endswith(".tmp")]
    monkeypatch.setattr(builtin_dataset, "ensure", lambda: path)
    assert open_dataset(None).names == ds.names


def test_sampler_ranks_disjoint_and_seeded():
    size, world = 11, 3
    streams = []
    for rank in range(world):
        it = iter(InfiniteSampler(size, rank=rank, world_size=world, seed=5))
        streams.append([next(it) for _ in range(size // world)])
    flat = sum(streams, [])
    assert len(set(flat)) == len(flat) == 9, "ranks must see disjoint samples within an epoch"
    it = iter(InfiniteSampler(size, seed=5))
    epochs = [[next(it) for _ in range(size)] for _ in range(2)]
    assert sorted(epochs[0]) == list(range(size)) and sorted(epochs[1]) == list(range(size))
    assert epochs[0] != epochs[1]
    with pytest.raises(ValueError, match="rank must be < world_size"):
        InfiniteSampler(5, rank=2, world_size=2)
    with pytest.raises(TypeError, match="seed must be an int"):
        InfiniteSampler(5, seed=0.5)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches(folder, workers):
    root, images = folder
    with open(os.path.join(root, "dataset.json"), "w") as fh:
        json.dump({"labels": [[n, k % 2] for k, n in enumerate(sorted(images))]}, fh)
    path = _zip_folder(root, os.path.join(os.path.dirname(root), "l.zip")) if workers else root   # zip in workers
    ds = open_dataset(path, use_labels=True, mirror=True)
    it = make_loader(ds, batch_size=4, workers=workers, seed=1)
    seen = []
    for _ in range(3):
        x, c = next(it)
        assert x.dtype == torch.uint8 and x.shape == (4, 3, 16, 16)
        assert c.dtype == torch.float32 and c.shape == (4, 2) and (c.sum(1) == 1).all()
        seen.append(x)
    again = next(make_loader(ds, batch_size=4, workers=0, seed=1))[0]
    assert torch.equal(again, seen[0]), "same seed, same batches"
    xf = images_to_float(seen[0])
    assert xf.dtype == torch.float32 and xf.min() >= -1 and xf.max() <= 1
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_loader(ds, batch_size=0)


def test_loader_ranks_get_disjoint_samples(folder):
    root, _ = folder
    ds = open_dataset(root, mirror=True)                         # 10 samples, all distinct
    batches = [next(make_loader(ds, batch_size=5, rank=r, world_size=2, workers=0, seed=3))[0] for r in range(2)]
    rows = {tuple(img.flatten().tolist()) for b in batches for img in b}
    assert len(rows) == 10


@pytest.mark.skipif(not os.path.isdir(MONET), reason=f"{MONET} is absent (the shared Monet images)")
def test_monet256_reads():
    ds = open_dataset(MONET, resolution=64, max_images=6)
    assert len(ds) == 6 and ds.resolution == (64, 64) and not ds.skipped
    imgs = np.stack([ds[i][0] for i in range(len(ds))])
    assert imgs.shape == (6, 3, 64, 64) and imgs.std() > 10


@gpu
def test_loader_on_cuda_pins_and_moves(folder):
    root, _ = folder
    ds = open_dataset(root)
    x, c = next(make_loader(ds, batch_size=2, workers=1, device="cuda"))
    assert x.device.type == "cuda" and c.device.type == "cuda" and x.dtype == torch.uint8
