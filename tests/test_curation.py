"""Dataset curation: dedupe, crop modes, clustering and packing a selection (issue 19)."""
import csv
import io
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from ganops_models.tools import cluster, dataset_tool
from ganops_models.curation import features as feats
from ganops_models.curation.scan import scan
from ganops_models.data import image as im
from ganops_models.data import open_dataset
from ganops_models.data.source import open_source
from ganops_models.metrics import inception, resize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ../shared next to the checkout (or next to the folder of worktrees)
MONET = next((p for p in (os.path.join(ROOT, "..", "shared", "data", "monet256"),
                          os.path.join(ROOT, "..", "..", "shared", "data", "monet256")) if os.path.isdir(p)),
             os.path.join(ROOT, "..", "shared", "data", "monet256"))


def smooth_image(seed: int, size: int = 128) -> Image.Image:
    """A distinct smooth random picture: 6x6 random colours upsampled bicubically."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return small.resize((size, size), Image.Resampling.BICUBIC)


def jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def zip_images(path):
    with zipfile.ZipFile(path) as z:
        return [np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB")) for n in sorted(z.namelist())
                if n.endswith(".png")]


# ---------------------------------------------------------------- dedupe
@pytest.fixture(scope="module")
def dup_source(tmp_path_factory):
    """12 distinct images plus one near duplicate of each kind; returns (folder, {dropped: kept})."""
    root = tmp_path_factory.mktemp("dups")
    for i in range(12):
        smooth_image(i).save(root / f"orig{i:02d}.png")
    base = {i: smooth_image(i) for i in range(7)}
    # copies of equal size keep the first path, so the copies are named x_...
    (root / "x_exact.png").write_bytes((root / "orig00.png").read_bytes())
    base[1].resize((80, 80), Image.Resampling.LANCZOS).save(root / "x_smaller.png")
    (root / "x_recompressed.jpg").write_bytes(jpeg(base[2], 40))
    base[3].crop((4, 4, 124, 124)).save(root / "x_crop_centre.png")
    base[4].crop((5, 5, 128, 128)).save(root / "x_crop_corner.png")
    ImageEnhance.Brightness(base[5]).enhance(1.1).save(root / "x_brighter.png")
    base[6].resize((192, 192), Image.Resampling.LANCZOS).save(root / "x_larger.png")
    (root / "broken.png").write_bytes(b"not an image")
    expected = {"x_exact.png": "orig00.png", "x_smaller.png": "orig01.png", "x_recompressed.jpg": "orig02.png",
                "x_crop_centre.png": "orig03.png", "x_crop_corner.png": "orig04.png", "x_brighter.png": "orig05.png",
                "orig06.png": "x_larger.png"}   # the larger copy is kept
    return str(root), expected


def test_dedupe_finds_each_kind_and_drops_nothing_else(dup_source, tmp_path, capsys, caplog):
    source, expected = dup_source
    dest = tmp_path / "out.zip"
    assert dataset_tool.main(["--source", source, "--dest", str(dest), "--resolution", "32", "--dedupe"]) == 0
    out = capsys.readouterr().out
    rows = read_csv(tmp_path / "out.duplicates.csv")
    assert rows[0] == ["kept", "dropped", "distance"]
    assert {r[1]: r[0] for r in rows[1:]} == expected
    assert all(0 <= int(r[2]) <= 6 for r in rows[1:])
    assert next(int(r[2]) for r in rows[1:] if r[1] == "x_exact.png") == 0
    assert "'broken.png'" in caplog.text and "7 duplicate(s) dropped" in out
    assert len(zip_images(dest)) == 12


def test_dedupe_threshold_zero_drops_only_identical_hashes(dup_source, tmp_path):
    source, expected = dup_source
    dest = tmp_path / "out"
    assert dataset_tool.main(["--source", source, "--dest", str(dest), "--resolution", "32", "--dedupe",
                              "--dedupe-threshold", "0", "--workers", "1"]) == 0
    rows = read_csv(str(dest) + ".duplicates.csv")
    dropped = {r[1] for r in rows[1:]}
    assert "x_exact.png" in dropped and dropped < set(expected) and all(r[2] == "0" for r in rows[1:])
    assert "x_crop_corner.png" not in dropped
    assert sum(len(f) for _, _, f in os.walk(dest)) == 12 + 7 - len(dropped) + 1   # images + dataset.json


# ---------------------------------------------------------------- crop modes
def test_crop_modes_fit_and_upscale_warning(tmp_path, caplog):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :] = (200, 10, 30)
    arr[4:16, 8:32] = (0, 255, 0)   # a green box in a 4/8 px red frame
    img = Image.fromarray(arr)
    padded = im.fit(img, (8, 8), "pad")     # 40x40 canvas in the edge colour, image at rows 10..30
    assert np.abs(padded[0].astype(int) - (200, 10, 30)).max() <= 4 and padded[4, 4, 1] > 200
    letterbox = im.fit(img, (8, 8), "center-crop-wide")
    assert (letterbox[:2] == 0).all() and (letterbox[-2:] == 0).all() and letterbox[4, 4, 1] > 200
    stretched = im.fit(img, (8, 8), "none")
    assert stretched[4, 4, 1] > 200 and stretched[4, 0, 0] > 150      # the red sides stay
    centre = im.fit(img, (8, 8), "center-crop")
    assert centre[4, 0, 1] > 200                                       # the red sides are cropped away
    img.save(tmp_path / "small.png")
    smooth_image(0, 64).save(tmp_path / "big.png")
    with caplog.at_level("WARNING", logger="ganops_models.data"):
        open_dataset(str(tmp_path), resolution=64)   # centre crop: the 20x20 box of small.png is enlarged 3.2x
    assert "1 image(s) had to be upscaled by more than 2x" in caplog.text and "small.png (3.2x)" in caplog.text
    assert "big.png" not in caplog.text


def test_dataset_tool_crop_option(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full((16, 32, 3), 90, np.uint8)).save(src / "wide.png")
    assert dataset_tool.main(["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "16",
                              "--crop", "letterbox"]) == 0
    (out,) = zip_images(tmp_path / "o.zip")
    assert (out[:4] == 0).all() and (out[4:12] == 90).all()


# ---------------------------------------------------------------- clustering
def kind_image(kind: int, seed: int, size: int = 64) -> Image.Image:
    """Three clearly different kinds: warm smooth, blue stripes, green-grey noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == 0:
        arr = np.stack([200 + 40 * np.sin(xx / 9 + seed), 120 + 30 * np.cos(yy / 11), 40 + 0 * xx], -1)
    elif kind == 1:
        stripes = 128 + 120 * np.sign(np.sin((xx + seed) * (0.8 + 0.05 * seed)))
        arr = np.stack([0 * xx + 20, stripes * 0.4, stripes], -1)
    else:
        arr = np.stack([90 + 0 * xx, 140 + 0 * xx, 90 + 0 * xx], -1) + rng.normal(0, 50, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def kinds_source(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    for kind in range(3):
        (root / f"k{kind}").mkdir()
        for i in range(6):
            kind_image(kind, i).save(root / f"k{kind}" / f"{i}.png")
    (root / "k0" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return str(root)


def _clusters_by_kind(outdir):
    rows = read_csv(os.path.join(outdir, "clusters.csv"))
    assert rows[0] == ["path", "cluster"]
    by_kind = {}
    for path, c in rows[1:]:
        by_kind.setdefault(path.split("/")[0], set()).add(int(c))
    return rows[1:], by_kind


def test_cluster_separates_kinds_and_selection_round_trips(kinds_source, tmp_path, capsys):
    outdir = tmp_path / "cl"
    assert cluster.main(["--source", kinds_source, "--k", "auto", "--features", "color", "--outdir", str(outdir),
                         "--workers", "1"]) == 0
    assert "'k0/broken.jpg'" in capsys.readouterr().out
    rows, by_kind = _clusters_by_kind(outdir)
    assert len(rows) == 18 and all(len(v) == 1 for v in by_kind.values())
    assert len(set.union(*by_kind.values())) == 3          # --k auto found the three kinds
    for c in range(3):
        with Image.open(outdir / f"cluster_{c}.png") as sheet:
            assert sheet.size[0] > 0
    assert Image.open(outdir / "elbow.png").size == (960, 260)
    keep = sorted(by_kind["k1"] | by_kind["k2"])
    dest = tmp_path / "sel.zip"
    assert dataset_tool.main(["--source", kinds_source, "--dest", str(dest), "--clusters",
                              str(outdir / "clusters.csv"), "--keep-clusters", ",".join(map(str, keep))]) == 0
    packed = zip_images(dest)
    want = [np.asarray(kind_image(k, i)) for k in (1, 2) for i in range(6)]
    assert len(packed) == 12 and all((p == w).all() for p, w in zip(packed, want))


def test_cluster_bad_input(kinds_source, tmp_path, capsys):
    assert cluster.main(["--source", kinds_source, "--k", "40", "--features", "color", "--outdir",
                         str(tmp_path / "x")]) == 2
    assert "--k 40 is larger than the number of readable images" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"junk")
    assert cluster.main(["--source", str(empty), "--k", "1", "--features", "color", "--outdir",
                         str(tmp_path / "y"), "--workers", "1"]) == 2
    assert "could be decoded" in capsys.readouterr().err


def test_keep_clusters_errors(kinds_source, tmp_path, capsys):
    table = tmp_path / "clusters.csv"
    table.write_text("path,cluster\nk0/0.png,0\nk0/1.png,1\n")
    args = ["--source", kinds_source, "--dest", str(tmp_path / "o.zip"), "--clusters", str(table)]
    assert dataset_tool.main(args + ["--keep-clusters", "5"]) == 2
    assert "cluster(s) [5]" in capsys.readouterr().err
    assert dataset_tool.main(args) == 2
    assert "go together" in capsys.readouterr().err
    table.write_text("path,cluster\nother/0.png,0\n")
    assert dataset_tool.main(args + ["--keep-clusters", "0"]) == 2
    assert "none of the paths" in capsys.readouterr().err
    table.write_text("file,group\n")
    assert dataset_tool.main(args + ["--keep-clusters", "0"]) == 2
    assert "first line must be 'path,cluster'" in capsys.readouterr().err
    assert not (tmp_path / "o.zip").exists()


def test_inception_features_when_weights_are_given(kinds_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(resize, "SIZE", 75)   # the Inception's smallest input keeps this CPU test fast
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv("GANOPS_INCEPTION", raising=False)
    torch.manual_seed(0)
    weights = tmp_path / inception.WEIGHTS_NAME
    torch.save(inception.FIDInceptionV3().state_dict(), weights)
    thumbs = scan(open_source(kinds_source), ["k0/0.png", "k1/0.png"], thumb=64, workers=1, hashes=False).thumbs
    got = feats.inception_features(thumbs, str(weights), batch=1)
    assert got.shape == (2, 2048) and np.isfinite(got).all() and not np.allclose(got[0], got[1])
    assert cluster._feature_kind("auto", None, print) == "color"
    assert "weight-free" in capsys.readouterr().out
    monkeypatch.setenv("GANOPS_INCEPTION", str(weights))
    assert cluster._feature_kind("auto", None, print) == "inception"


@pytest.mark.skipif(not os.path.isdir(MONET), reason=f"the shared Monet paintings are not at {MONET} (only on the "
                                                     f"project machine; CI clones have no ../shared)")
def test_monet_colour_clusters():
    result = scan(open_source(MONET), open_source(MONET).list_images(), thumb=32, workers=2, hashes=False)
    labels = cluster.kmeans.kmeans(feats.color_features(result.thumbs), 4).labels
    assert len(result.names) == 1072 and not result.failed
    assert sorted(np.bincount(labels, minlength=4))[0] > 20   # no degenerate cluster


def test_training_crop_option_reaches_the_dataset(tmp_path):
    from ganops_models.tools import train
    from ganops_models.training.loop import open_training_data
    from ganops_models.training.options import TrainOptions
    Image.fromarray(np.full((16, 32, 3), 90, np.uint8)).save(tmp_path / "wide.png")
    assert train.build_parser().parse_args(["--crop", "letterbox"]).crop == "letterbox"
    dataset, _ = open_training_data(TrainOptions(data=str(tmp_path), resolution=(16, 16), crop="letterbox"))
    image, _ = dataset[0]
    assert dataset.transform == "center-crop-wide" and (image[:, :4] == 0).all() and (image[:, 4:12] == 90).all()
