"""ADA augmentation: every op's effect, identity at p=0, differentiability, the p controller."""
import math

import numpy as np
import pytest
import torch

from ganops_models.augment import OPS, PRESETS, AdaController, AugmentPipe, build_augment
from ganops_models.augment import ada
from ganops_models.augment._wavelets import SYM6, db2, octave_filter_bank
from helpers import assert_close, gpu


def _images(n=4, c=3, h=16, w=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, h, w, generator=g) * 2 - 1).to(dtype)


def _smooth(n=2, h=32, w=32):
    yy, xx = torch.meshgrid(torch.arange(float(h)), torch.arange(float(w)), indexing="ij")
    img = torch.stack([torch.sin(xx * 0.3 + yy * 0.1), torch.cos(yy * 0.25), torch.sin(xx * 0.2) * torch.cos(yy * 0.15)])
    return img[None].repeat(n, 1, 1, 1)


def _blob(sx, sy, size=48, n=1):
    """A Gaussian blob (std sx, sy pixels) at the centre on a -1 background, [n, 1, size, size]."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(float(size)) - c, torch.arange(float(size)) - c, indexing="ij")
    img = 2 * torch.exp(-0.5 * ((xx / sx) ** 2 + (yy / sy) ** 2)) - 1
    return img[None, None].repeat(n, 1, 1, 1).double()


def _moments(img):
    """(centroid x, y relative to the centre, covariance [2, 2]) of img + 1 (one image [1, H, W]) within
    the inscribed disc (outside it, a rotation shows the reflection padding)."""
    h, w = img.shape[1:]
    yy, xx = torch.meshgrid(torch.arange(float(h)) - (h - 1) / 2, torch.arange(float(w)) - (w - 1) / 2, indexing="ij")
    wgt = (img[0] + 1).clamp(min=0) * ((xx ** 2 + yy ** 2) < (min(h, w) / 2 - 2) ** 2)
    total = wgt.sum()
    mx, my = (wgt * xx).sum() / total, (wgt * yy).sum() / total
    dx, dy = xx - mx, yy - my
    cov = torch.stack([torch.stack([(wgt * dx * dx).sum(), (wgt * dx * dy).sum()]),
                       torch.stack([(wgt * dx * dy).sum(), (wgt * dy * dy).sum()])]) / total
    return mx.item(), my.item(), cov


def _full(n, value):
    return torch.full((n,), float(value))


# --- filters ---------------------------------------------------------------------------------------

def test_wavelet_filters():
    h = np.array(SYM6)
    assert abs(h.sum() - math.sqrt(2)) < 1e-12 and abs((h * h).sum() - 1) < 1e-10
    for shift in range(1, 6):                                   # orthogonal to its even shifts
        assert abs(np.dot(h[2 * shift:], h[:-2 * shift])) < 1e-10
    k = np.arange(12)
    hi = h[::-1] * (-1.0) ** k
    for m in range(6):                                          # 6 vanishing moments
        assert abs((hi * (k - 5.5) ** m).sum()) < 1e-6
    d = db2()
    assert abs(d.sum() - math.sqrt(2)) < 1e-12 and abs(np.dot(d[2:], d[:-2])) < 1e-12
    bank = octave_filter_bank()
    impulse = np.zeros(bank.shape[1])
    impulse[bank.shape[1] // 2] = 1
    np.testing.assert_allclose(bank.sum(0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank.sum(1), [1, 0, 0, 0], atol=1e-12)      # only band 0 passes DC
    nyquist = (bank * (-1.0) ** np.arange(bank.shape[1])).sum(1) * (-1.0) ** (bank.shape[1] // 2)
    np.testing.assert_allclose(nyquist, [0, 0, 0, 1], atol=1e-12)          # only band 3 passes Nyquist
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-15)             # zero phase


# --- pipe construction and the p = 0 identity ------------------------------------------------------

def test_presets_and_arguments():
    assert set(PRESETS["bgcfnc"]) == set(OPS) and len(OPS) == 15
    assert set(PRESETS["bgc"]) == set(PRESETS["blit"] + PRESETS["geom"] + PRESETS["color"])
    pipe = AugmentPipe("bgc", p=0.3, xflip=0.5, scale_std=0.1)
    assert pipe.multipliers["xflip"] == 0.5 and pipe.multipliers["noise"] == 0 and pipe.settings["scale_std"] == 0.1
    assert float(pipe.p) == pytest.approx(0.3) and list(pipe.state_dict()) == ["p"]
    assert set(AugmentPipe(None, noise=1).sample_params(3)) == {"noise"}
    with pytest.raises(ValueError, match="preset must be one of"):
        AugmentPipe("bgx")
    with pytest.raises(TypeError, match="unknown argument 'flip'"):
        AugmentPipe("bgc", flip=1)
    with pytest.raises(ValueError, match="p must be a number in"):
        AugmentPipe("bgc", p=1.5)
    with pytest.raises(ValueError, match="xflip must be a non-negative"):
        AugmentPipe("bgc", xflip=-1)
    with pytest.raises(ValueError, match="4-D"):
        AugmentPipe("bgc", p=0.5)(torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="floating point"):
        AugmentPipe("bgc", p=0.5)(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        AugmentPipe("color").apply(_images(c=2), {"brightness": _full(4, 0.1)})


def test_identity_at_p_zero():
    x = _images()
    pipe = AugmentPipe("bgcfnc", p=0.0)
    assert torch.equal(pipe(x), x)       # decided on the device: the draws run, nothing fires
    params = pipe.sample_params(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pipe.apply(x, params), x)


@pytest.mark.parametrize("op", OPS)
def test_each_op_alone_changes_images(op):
    x = _images(n=8)
    pipe = AugmentPipe(None, p=1.0, **{op: 1})
    params = pipe.sample_params(8, generator=torch.Generator().manual_seed(1))
    y = pipe.apply(x, params, generator=torch.Generator().manual_seed(2))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    changed = (y - x).flatten(1).abs().amax(1) > 1e-3
    assert changed.sum() >= 4, f"{op} at p=1 changed only {int(changed.sum())} of 8 images"


def test_probability_multiplier():
    pipe = AugmentPipe(None, p=0.5, brightness=0.4)
    fired = pipe.sample_params(20000, generator=torch.Generator().manual_seed(0))["brightness"] != 0
    assert abs(fired.float().mean().item() - 0.2) < 0.015


# --- blits: exact -----------------------------------------------------------------------------------

def test_xflip_and_rotate90_are_exact():
    x = _images(n=4, h=16, w=16)
    pipe = AugmentPipe("blit", p=1.0)
    flips = torch.tensor([1.0, 0.0, 1.0, 0.0])
    y = pipe.apply(x, {"xflip": flips})
    assert torch.equal(y[0::2], x[0::2].flip(3)) and torch.equal(y[1::2], x[1::2])
    for k in range(4):
        y = pipe.apply(x, {"rotate90": _full(4, k)})
        assert torch.equal(y, torch.rot90(x, k, dims=(3, 2))), f"rotate90 k={k}"
    wide = _images(n=2, h=8, w=16)
    assert torch.equal(pipe.apply(wide, {"rotate90": _full(2, 2)}), wide.flip(2).flip(3))


def test_integer_translation_shifts_with_reflection():
    x = _images(n=2, h=16, w=16)
    y = AugmentPipe("blit", p=1.0).apply(x, {"xint": torch.tensor([[2 / 16, -3 / 16]] * 2)})
    assert torch.equal(y[..., :-3, 2:], x[..., 3:, :-2])          # content moved right 2, up 3
    assert torch.equal(y[..., :-3, 1], x[..., 3:, 1])             # reflected border (excluding the edge)


# --- general geometric transforms -------------------------------------------------------------------

def test_warp_alignment_matches_blits_on_smooth_images():
    """The up/grid_sample/down path, given a pure flip / quarter turn / shift, reproduces the exact blit
    away from the borders (this pins the centring of rotations and scalings)."""
    x = _smooth()
    f = AugmentPipe("geom").f_geom
    cases = [(ada._scale2d(-1.0, 1.0, 2, "cpu"), x.flip(3)),
             (ada._rotate2d(0.0, 1.0, 2, "cpu"), torch.rot90(x, 1, dims=(2, 3))),
             (ada._translate2d(-2.0, 3.0, 2, "cpu"), torch.roll(x, (-3, 2), dims=(2, 3)))]
    for g_inv, expect in cases:
        y = ada._warp(x, g_inv, f, None)
        assert (y - expect)[..., 5:-5, 5:-5].abs().max() < 0.01
    noise = _images(n=2, h=16, w=16)                            # integer shifts are exact for any content
    shifted = ada._warp(noise, ada._translate2d(-2.0, 3.0, 2, "cpu"), f, None)
    assert (shifted - torch.roll(noise, (-3, 2), dims=(2, 3)))[..., 4:-4, 4:-4].abs().max() < 1e-4


@pytest.mark.parametrize("key,value", [("scale", 1.3), ("aniso", 1.25), ("rotate_pre", 0.5), ("rotate_post", -0.7),
                                       ("xfrac", (0.1, -0.05))])
def test_geometric_statistics(key, value):
    pipe = AugmentPipe("geom", p=1.0)
    rotating = key.startswith("rotate")
    x = _blob(5.0, 2.0) if rotating else _blob(3.0, 3.0)
    param = torch.tensor([value], dtype=torch.float32)
    y = pipe.apply(x, {key: param})
    mx0, my0, cov0 = _moments(x[0])
    mx, my, cov = _moments(y[0])
    if key == "scale":
        torch.testing.assert_close(cov, cov0 * value ** 2, rtol=0.03, atol=0.05)
    elif key == "aniso":
        torch.testing.assert_close(cov.diag(), cov0.diag() * torch.tensor([value ** 2, value ** -2]).double(),
                                   rtol=0.03, atol=0.05)
    elif rotating:   # the long axis (x) turns by +theta (x right, y down)
        angle = 0.5 * math.atan2(2 * cov[0, 1].item(), (cov[0, 0] - cov[1, 1]).item())
        assert abs(angle - value) < 0.01
        torch.testing.assert_close(torch.linalg.eigvalsh(cov), torch.linalg.eigvalsh(cov0), rtol=0.03, atol=0.05)
    else:
        assert abs(mx - mx0 - value[0] * 48) < 0.05 and abs(my - my0 - value[1] * 48) < 0.05


# --- colour ---------------------------------------------------------------------------------------

def _luma_chroma(x):
    luma = x.mean(1, keepdim=True)
    return luma, x - luma


def test_color_ops_exact_statistics():
    x = _images(n=3).double()
    pipe = AugmentPipe("color", p=1.0)
    b = torch.tensor([0.3, -0.2, 0.0])
    torch.testing.assert_close(pipe.apply(x, {"brightness": b}) - x, b.double()[:, None, None, None].expand_as(x))
    c = torch.tensor([1.5, 0.5, 1.0])
    torch.testing.assert_close(pipe.apply(x, {"contrast": c}), x * c.double()[:, None, None, None])
    luma, chroma = _luma_chroma(x)
    y_luma, y_chroma = _luma_chroma(pipe.apply(x, {"lumaflip": torch.tensor([1.0, 1.0, 0.0])}))
    torch.testing.assert_close(y_luma[:2], -luma[:2])
    torch.testing.assert_close(y_chroma, chroma)
    s = torch.tensor([2.0, 0.25, 1.0])
    y_luma, y_chroma = _luma_chroma(pipe.apply(x, {"saturation": s}))
    torch.testing.assert_close(y_luma, luma)
    torch.testing.assert_close(y_chroma, chroma * s.double()[:, None, None, None])
    theta = torch.tensor([0.8, -2.0, 0.0])
    y_luma, y_chroma = _luma_chroma(pipe.apply(x, {"hue": theta}))
    torch.testing.assert_close(y_luma, luma)
    torch.testing.assert_close(y_chroma.norm(dim=1), chroma.norm(dim=1))
    cos = (y_chroma * chroma).sum(1) / (chroma.norm(dim=1) * y_chroma.norm(dim=1))
    torch.testing.assert_close(cos, torch.cos(theta).double()[:, None, None].expand_as(cos))


def test_color_on_grayscale_images():
    x = _images(n=2, c=1).double()
    y = AugmentPipe("color", p=1.0).apply(x, {"brightness": torch.tensor([0.25, -0.5]), "contrast": torch.tensor([2.0, 1.0])})
    torch.testing.assert_close(y, (x + torch.tensor([0.25, -0.5]).double()[:, None, None, None])
                               * torch.tensor([2.0, 1.0]).double()[:, None, None, None])


# --- filtering, noise, cutout ---------------------------------------------------------------------

def test_imgfilter_band_gains():
    pipe = AugmentPipe("filter", p=1.0)
    x = _images(n=2).double()
    assert (pipe.apply(x, {"imgfilter": torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 0.999999]])}) - x).abs().max() < 1e-5
    gains = torch.tensor([[1.7, 0.3, 0.5, 2.0], [0.6, 1.2, 1.1, 0.4]])
    const = torch.full((2, 3, 16, 16), 0.5).double()
    # the filter runs once per axis: a pattern in band b along both axes is scaled by gain_b ** 2
    torch.testing.assert_close(pipe.apply(const, {"imgfilter": gains}), const * gains[:, :1].double()[..., None, None] ** 2)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2 - 1).double().expand(2, 3, 16, 16)
    torch.testing.assert_close(pipe.apply(checker, {"imgfilter": gains}), checker * gains[:, 3:].double()[..., None, None] ** 2)
    drawn = AugmentPipe("filter", p=1.0).sample_params(500, generator=torch.Generator().manual_seed(0))["imgfilter"]
    assert (drawn > 0).all() and drawn.std() > 0.2


def test_noise_std_matches_sigma():
    x = _images(n=3, h=64, w=64)
    sigma = torch.tensor([0.05, 0.2, 0.0])
    y = AugmentPipe("noise", p=1.0).apply(x, {"noise": sigma}, generator=torch.Generator().manual_seed(0))
    std = (y - x).flatten(1).std(1)
    assert abs(std[0] / 0.05 - 1) < 0.05 and abs(std[1] / 0.2 - 1) < 0.05 and std[2] == 0


def test_cutout_zeroes_a_square():
    x = _images(n=2, h=32, w=32) + 2                                   # strictly positive
    y = AugmentPipe("cutout", p=1.0).apply(x, {"cutout": torch.tensor([[0.5, 0.5], [0.25, 0.75]]),
                                                "cutout_size": torch.tensor([0.5, 0.0])})
    assert torch.equal(y[0, :, 8:24, 8:24], torch.zeros(3, 16, 16)) and int((y[0] == 0).sum()) == 3 * 256
    assert torch.equal(y[1], x[1])


# --- dtypes and gradients -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    x = _images(n=2, h=16, w=16)
    pipe = AugmentPipe("bgcf", p=1.0)
    params = pipe.sample_params(2, generator=torch.Generator().manual_seed(3))
    ref = pipe.apply(x.double(), params)
    y = pipe.apply(x.to(dtype), params)
    assert y.dtype == dtype and torch.isfinite(y).all()
    assert (y.double() - ref).norm() / ref.norm() < (5e-3 if dtype == torch.float16 else 3e-2)


def test_gradcheck_and_gradgradcheck_through_the_pipe():
    pipe = AugmentPipe("bgcf", p=1.0, cutout=1)
    params = pipe.sample_params(2, generator=torch.Generator().manual_seed(4))
    x = _images(n=2, h=8, w=8).double().requires_grad_(True)
    fn = lambda t: pipe.apply(t, params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_r1_double_backward_through_augmentation():
    torch.manual_seed(0)
    disc = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 16 * 16, 1))
    pipe = AugmentPipe("bgcfnc", p=1.0)
    x = _images(n=3).requires_grad_(True)
    logits = disc(pipe(x))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = grad.square().sum()
    penalty.backward()
    for weight in (disc[0].weight, disc[0].bias, disc[3].weight):   # the last bias does not enter grad
        assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


# --- the controller ---------------------------------------------------------------------------------

def test_controller_moves_p_towards_target():
    pipe = AugmentPipe("bgc", p=0.0)
    ctl = AdaController(target=0.6, ada_kimg=1, batch_size=10, interval=2)
    assert ctl.adjust_step == pytest.approx(0.02)
    history = []
    for step in range(8):                          # D overfits: all real logits positive, r_t = 1 > 0.6
        ctl.accumulate(torch.full((10, 1), 3.0))
        history.append((ctl.step(pipe), float(pipe.p)))
    assert [adj for adj, _ in history] == [False, True] * 4
    assert float(pipe.p) == pytest.approx(0.08) and ctl.rt == 1.0
    for _ in range(4):                             # r_t = 0.2 < 0.6: p goes down
        ctl.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0]))
        ctl.step(pipe)
    assert float(pipe.p) == pytest.approx(0.04) and ctl.rt == pytest.approx(0.2)
    for _ in range(10):
        ctl.accumulate(-torch.ones(7))
        ctl.step(pipe)
    assert float(pipe.p) == 0.0, "p is clamped at 0"
    assert not any(ctl.step(pipe) for _ in range(4)), "no adjustment without accumulated logits"
    ctl.accumulate(torch.ones(3))
    assert ctl.update(pipe) and float(pipe.p) == pytest.approx(0.02), "update() adjusts immediately"


def test_controller_state_dict_round_trip():
    pipe_a, pipe_b = AugmentPipe("bgc", p=0.1), AugmentPipe("bgc")
    ctl = AdaController(target=0.5, ada_kimg=2, batch_size=8, interval=3)
    ctl.accumulate(torch.ones(8))
    ctl.step(pipe_a)
    state = ctl.state_dict()
    assert state["count"] == 8 and state["steps"] == 1
    restored = AdaController()
    restored.load_state_dict(state)
    pipe_b.load_state_dict(pipe_a.state_dict())
    for c, pipe in ((ctl, pipe_a), (restored, pipe_b)):
        c.accumulate(-torch.ones(4))
        c.step(pipe)
        assert c.step(pipe)                       # 3rd step: adjust with r_t = (8 - 4) / 12 < 0.5
    assert float(pipe_a.p) == float(pipe_b.p) == pytest.approx(0.1 - 8 * 3 / 2000)
    assert restored.state_dict() == ctl.state_dict()


def test_build_augment_modes():
    assert build_augment("noaug") == (None, None)
    pipe, ctl = build_augment("fixed", p=0.25, preset="bg")
    assert ctl is None and float(pipe.p) == 0.25 and pipe.multipliers["brightness"] == 0
    pipe, ctl = build_augment("ada", target=0.7, ada_kimg=100, batch_size=64)
    assert float(pipe.p) == 0 and ctl.target == 0.7 and ctl.adjust_step == pytest.approx(64 * 4 / 100000)
    with pytest.raises(ValueError, match="needs p"):
        build_augment("fixed")
    with pytest.raises(ValueError, match="aug must be one of"):
        build_augment("always")
    with pytest.raises(ValueError, match="target must be"):
        build_augment("ada", target=1.5)
    with pytest.raises(ValueError, match="only meaningful"):
        build_augment("noaug", p=0.1)


# --- GPU ------------------------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("impl", [None, "ref"])
def test_cuda_matches_cpu_and_double_backward(impl):
    cpu_pipe = AugmentPipe("bgcf", p=1.0, cutout=1)
    params = cpu_pipe.sample_params(4, generator=torch.Generator().manual_seed(5))
    x = _images(n=4, h=32, w=32)
    ref = cpu_pipe.apply(x.double(), params)
    pipe = AugmentPipe("bgcf", p=1.0, cutout=1, impl=impl).cuda()
    xc = x.cuda().requires_grad_(True)
    y = pipe.apply(xc, {k: v.cuda() for k, v in params.items()})
    assert_close(y, ref, torch.float32, "augmented images", factor=10)
    (grad,) = torch.autograd.grad(y.square().sum(), xc, create_graph=True)
    (grad2,) = torch.autograd.grad(grad.square().sum(), xc)
    assert torch.isfinite(grad2).all() and grad2.abs().sum() > 0
    assert pipe(xc).device.type == "cuda"
