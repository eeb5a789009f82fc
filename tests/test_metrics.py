"""FID / KID / SWD math, metric-name parsing, metrics.jsonl and the PIL plot."""
import json
import os

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch
from PIL import Image

from ganops_models.metrics import fid, kid, names, plot, report, swd


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


# ---------------------------------------------------------------- FID
def _random_cov(rng, d, scale=1.0):
    a = rng.standard_normal((d, d)) * scale
    return a @ a.T / d + 0.1 * np.eye(d)


@pytest.mark.parametrize("method", ["scipy", "eig"])
def test_frechet_distance_closed_form_diagonal(method):
    rng = np.random.default_rng(0)
    d = 7
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    v1, v2 = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2), method=method)
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["scipy", "eig"])
def test_frechet_distance_general_covariances_against_symmetric_form(method):
    rng = np.random.default_rng(1)
    d = 9
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d, 2.0)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    r1 = scipy.linalg.sqrtm(s1).real
    tr = np.sum(np.sqrt(np.linalg.eigvalsh(r1 @ s2 @ r1)))  # tr (S1^1/2 S2 S1^1/2)^1/2
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert fid.frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-8)


def test_fid_of_gaussian_samples_approaches_closed_form():
    rng = np.random.default_rng(2)
    d, n = 6, 40000
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    v1, v2 = np.linspace(0.5, 2.0, d), np.linspace(2.0, 0.5, d)
    x = mu1 + rng.standard_normal((n, d)) * np.sqrt(v1)
    y = mu2 + rng.standard_normal((n, d)) * np.sqrt(v2)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid.fid_from_features(x, y) == pytest.approx(expected, rel=0.03)
    mu, sigma = fid.feature_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)


def test_fid_identical_sets_is_zero_and_symmetric():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 12)), rng.standard_normal((250, 12)) + 0.3
    assert abs(fid.fid_from_features(x, x)) < 1e-8
    assert fid.fid_from_features(x, y) == pytest.approx(fid.fid_from_features(y, x), rel=1e-8)


@pytest.mark.parametrize("n1,n2", [(5, 7), (40, 30), (6, 50)])
def test_fid_lowrank_form_is_exact(n1, n2):
    rng = np.random.default_rng(n1)
    x, y = rng.standard_normal((n1, 12)), rng.standard_normal((n2, 12)) * 2 + 0.5
    (mu1, s1), (mu2, s2) = fid.feature_stats(x), fid.feature_stats(y)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S1^1/2, also when singular
    tr = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert fid.fid_from_features(x, y, method="lowrank") == pytest.approx(expected, rel=1e-6)
    auto = "lowrank" if max(n1, n2) <= 12 else "scipy"
    assert fid.fid_from_features(x, y) == fid.fid_from_features(x, y, method=auto)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fid_singular_covariances_stay_finite():
    """Fewer samples than dimensions: singular covariances; the eps fallback keeps it finite."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((10, 40)), rng.standard_normal((12, 40)) * 1.5
    got = fid.fid_from_features(x, y, method="scipy")
    assert np.isfinite(got)
    assert got == pytest.approx(fid.fid_from_features(x, y, method="eig"), rel=1e-3)


def test_fid_bad_inputs():
    with pytest.raises(ValueError, match="features"):
        fid.feature_stats(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        fid.feature_stats(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="mu2"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="mu1/sigma1"):
        fid.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")


# ---------------------------------------------------------------- KID
def _mmd_brute(x, y):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    m = x.shape[0]
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (sxx + syy) / (m * (m - 1)) - 2 * sxy / (m * m)


def test_kid_matches_brute_force_single_full_subset():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((15, 4)), rng.standard_normal((15, 4)) + 0.7
    mean, std = kid.kernel_inception_distance(x, y, num_subsets=1, max_subset_size=1000)
    assert mean == pytest.approx(_mmd_brute(x, y), rel=1e-10)
    assert std == 0.0


def test_kid_subsets_follow_the_reference_sampling():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((25, 5)) * 1.3
    mean, std = kid.kernel_inception_distance(x, y, num_subsets=4, max_subset_size=10, seed=7)
    pick = np.random.RandomState(7)
    vals = []
    for _ in range(4):
        a = x[pick.choice(30, 10, replace=False)]
        b = y[pick.choice(25, 10, replace=False)]
        vals.append(_mmd_brute(a, b))
    assert mean == pytest.approx(np.mean(vals), rel=1e-10)
    assert std == pytest.approx(np.std(vals), rel=1e-8)


def test_kid_is_unbiased_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((200, 16)), rng.standard_normal((200, 16))
    mean, std = kid.kernel_inception_distance(x, y, num_subsets=10, max_subset_size=100)
    shifted, _ = kid.kernel_inception_distance(x, y + 1.0, num_subsets=10, max_subset_size=100)
    assert abs(mean) < 5 * std + 1e-3
    assert shifted > 20 * abs(mean)


def test_kid_bad_inputs():
    with pytest.raises(ValueError, match="features1"):
        kid.kernel_inception_distance(np.ones((1, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="features2"):
        kid.kernel_inception_distance(np.ones((4, 3)), np.ones((4, 2)))


# ---------------------------------------------------------------- SWD
_G = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]) / 256


def _np_pyr_down(x):
    return scipy.ndimage.convolve(x, _G[None, None], mode="mirror")[:, :, ::2, ::2]


def _np_pyr_up(x):
    s = x.shape
    res = np.zeros((s[0], s[1], s[2] * 2, s[3] * 2), x.dtype)
    res[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(res, _G[None, None] * 4.0, mode="mirror")


def test_pyramid_matches_scipy_mirror_convolution():
    x = np.random.default_rng(9).uniform(0, 255, (2, 3, 16, 12)).astype(np.float64)
    np.testing.assert_allclose(swd.pyr_down(torch.from_numpy(x)).numpy(), _np_pyr_down(x), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(swd.pyr_up(torch.from_numpy(x)).numpy(), _np_pyr_up(x), rtol=1e-12, atol=1e-9)
    levels = swd.laplacian_pyramid(torch.from_numpy(x), 3)
    assert [tuple(lv.shape[2:]) for lv in levels] == [(16, 12), (8, 6), (4, 3)]
    # The pyramid is invertible: collapsing it gives the image back.
    rec = levels[-1]
    for lv in reversed(levels[:-1]):
        rec = lv + swd.pyr_up(rec)
    np.testing.assert_allclose(rec.numpy(), x, rtol=1e-12, atol=1e-9)


def test_patches_are_taken_from_the_right_places():
    level = torch.arange(2 * 3 * 10 * 11, dtype=torch.float64).reshape(2, 3, 10, 11)
    gen = torch.Generator().manual_seed(0)
    patches = swd.sample_patches(level, 5, gen)
    assert patches.shape == (10, 3, 7, 7)
    for p, img in zip(patches, [0] * 5 + [1] * 5):
        flat = int(p[0, 0, 0]) - img * 330
        y, x = divmod(flat, 11)
        torch.testing.assert_close(p, level[img, :, y:y + 7, x:x + 7])


def _images(n, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(0, 255, size).view(1, 1, 1, size).expand(n, 3, size, size)
    noise = torch.rand(n, 3, size, size, generator=g) * 120
    return (base * 0.5 + noise).clamp(0, 255).to(torch.uint8)


def _swd(real, fake, seed_real=0, seed_fake=1):
    a, b = swd.SWDDescriptors(seed=seed_real), swd.SWDDescriptors(seed=seed_fake)
    a.feed(real)
    b.feed(fake)
    return swd.swd_from_descriptors(a.finalize(), b.finalize())


def test_swd_zero_for_identical_sets_and_grows_with_a_known_shift():
    real = _images(6)
    same = _swd(real, real, seed_real=3, seed_fake=3)
    assert set(same) == {"swd", "swd/res32", "swd/res16"}
    assert all(v == 0.0 for v in same.values())
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(real.shape, generator=g)
    dists = [_swd(real, (real.float() + s * noise).clamp(0, 255).to(torch.uint8))["swd"] for s in (0, 12, 48)]
    assert dists[0] < dists[1] < dists[2], dists


def test_swd_descriptors_are_normalised_per_channel():
    acc = swd.SWDDescriptors(seed=0, nhoods_per_image=16)
    acc.feed(_images(4))
    desc = acc.finalize()[32].reshape(-1, 3, 49)
    torch.testing.assert_close(desc.mean(dim=(0, 2)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(desc.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-5, rtol=0)


def test_swd_bad_inputs():
    acc = swd.SWDDescriptors()
    with pytest.raises(ValueError, match="images"):
        acc.feed(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 16"):
        acc.feed(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    acc.feed(_images(2, 32))
    with pytest.raises(ValueError, match="differs"):
        acc.feed(_images(2, 64))
    other = swd.SWDDescriptors()
    other.feed(_images(2, 64))
    with pytest.raises(ValueError, match="fake"):
        swd.swd_from_descriptors(acc.finalize(), other.finalize())


MONET = "/work/shared/data/monet256"


@pytest.mark.skipif(not os.path.isdir(MONET), reason=f"dataset {MONET} not present")
def test_swd_on_real_paintings():
    """Two disjoint sets of paintings are closer to each other than to noise of the same histogram."""
    from ganops_models.metrics.sources import open_images
    ds = open_images(MONET)
    a = torch.stack([torch.as_tensor(ds[i][0]) for i in range(6)])
    b = torch.stack([torch.as_tensor(ds[i][0]) for i in range(6, 12)])
    shuffled = b.flatten(2)[:, :, torch.randperm(b[0, 0].numel(), generator=torch.Generator().manual_seed(0))]
    near, far = _swd(a, b), _swd(a, shuffled.view_as(b))
    assert set(near) == {"swd"} | {f"swd/res{r}" for r in (256, 128, 64, 32, 16)}
    assert 0 < near["swd"] < far["swd"]


# ---------------------------------------------------------------- names
def test_parse_metric_names():
    specs = names.parse_metrics("fid50k_full, kid10k,swd,fid,swd16k")
    assert [(s.name, s.kind, s.num, s.max_real) for s in specs] == [
        ("fid50k_full", "fid", 50000, None), ("kid10k", "kid", 10000, 10000),
        ("swd", "swd", names.DEFAULT_SWD_COUNT, None), ("fid", "fid", None, None), ("swd16k", "swd", 16000, None)]
    assert names.parse_metrics("none") == [] and names.parse_metrics("") == []
    assert [s.name for s in names.parse_metrics(["kid50k_full"])] == ["kid50k_full"]
    for bad, match in (("fid,none", "none"), ("fidd", "unknown"), ("fid0k", "0 images"), ("swd,swd", "more than once")):
        with pytest.raises(ValueError, match=match):
            names.parse_metrics(bad)


# ---------------------------------------------------------------- jsonl + plot
def test_metrics_jsonl_and_plot(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    report.append_metrics_jsonl(path, 0, {"fid50k_full": 300.0, "kid50k_full": 0.3, "kid50k_full/std": 0.01,
                                          "swd": 80.0, "swd/res32": 70.0})
    report.append_metrics_jsonl(path, 4.5, {"fid50k_full": 120.0, "kid50k_full": 0.1, "kid50k_full/std": 0.02,
                                            "swd": 40.0, "swd/res32": 30.0}, snapshot="checkpoint-4.5.pt")
    with open(path, "a") as fh:
        fh.write('{"kimg": 9, "resu')  # torn line of a killed run
    recs = report.read_metrics_jsonl(path)
    assert [r["kimg"] for r in recs] == [0.0, 4.5] and recs[1]["snapshot"] == "checkpoint-4.5.pt"
    assert json.loads(path.read_text().splitlines()[0])["results"]["swd"] == 80.0
    png = tmp_path / "metrics.png"
    assert plot.plot_metrics(path, png) == ["fid50k_full", "kid50k_full", "swd"]
    img = Image.open(png)
    assert img.size == (2 * plot.PANEL_W, 2 * plot.PANEL_H)
    arr = np.asarray(img.convert("RGB"))
    assert (arr != 255).any(axis=2).mean() > 0.01  # something was drawn
    with pytest.raises(TypeError, match="results"):
        report.append_metrics_jsonl(path, 1, [1.0])


def test_plot_of_empty_log(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("")
    assert plot.plot_metrics(path, tmp_path / "m.png") == []
    assert Image.open(tmp_path / "m.png").size == (plot.PANEL_W, plot.PANEL_H)
