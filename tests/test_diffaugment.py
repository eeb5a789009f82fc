"""DiffAugment: policies, per-sample draws, statistics, shared draws across inputs, gradients."""
import math

import pytest
import torch

from ganops_models.augment.diffaugment import DiffAugment, diff_augment, parse_policy


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_parse_policy():
    assert parse_policy("color, translation,cutout") == ["color", "translation", "cutout"]
    assert parse_policy("") == [] and parse_policy(None) == [] and parse_policy("none") == []
    with pytest.raises(ValueError, match="unknown"):
        parse_policy("color,rotate")
    with pytest.raises(ValueError, match="twice"):
        parse_policy("color,color")


@pytest.mark.parametrize("policy", ["", "none"])
def test_identity_when_disabled(policy):
    x = torch.randn(3, 3, 8, 8)
    assert diff_augment(x, policy) is x
    assert DiffAugment(policy)(x) is x


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"x\[0\] must be a float tensor"):
        diff_augment(torch.zeros(3, 8, 8), "color")
    with pytest.raises(ValueError, match=r"x\[0\] must be a float tensor"):
        diff_augment(torch.zeros(2, 3, 8, 8, dtype=torch.int64), "color")
    with pytest.raises(ValueError, match="batch"):
        diff_augment([torch.randn(2, 3, 8, 8), torch.randn(3, 3, 4, 4)], "color")
    with pytest.raises(ValueError, match="translation_ratio"):
        DiffAugment("translation", translation_ratio=1.5)
    with pytest.raises(ValueError, match="cutout_ratio"):
        DiffAugment("cutout", cutout_ratio=-0.1)


def test_color_matches_hand_computation():
    """brightness + (u0 - 0.5); saturation about the channel mean by 2 u1; contrast about the image mean by u2 + 0.5."""
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64)
    out = diff_augment(x, "color", gen(3))
    u = torch.rand(4, 3, generator=gen(3), dtype=torch.float32).double()
    for i in range(4):
        y = x[i] + (u[i, 0] - 0.5)
        m = y.mean(0)
        y = (y - m) * (2 * u[i, 1]) + m
        m = y.mean()
        y = (y - m) * (u[i, 2] + 0.5) + m
        torch.testing.assert_close(out[i], y)


def test_color_statistics():
    """Constant grey images: only brightness acts, a uniform shift in [-0.5, 0.5) per sample."""
    x = torch.full((4000, 3, 2, 2), 0.25)
    out = diff_augment(x, "color", gen(1))
    shift = (out - x)[:, 0, 0, 0]
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out), atol=1e-6)
    assert shift.min() >= -0.5 and shift.max() < 0.5
    assert abs(shift.mean().item()) < 0.02
    assert abs(shift.var().item() - 1 / 12) < 0.006
    # Zero-mean-per-pixel colour images: contrast factor in [0.5, 1.5) times saturation in [0, 2).
    x = torch.randn(4000, 3, 4, 4)
    x = x - x.mean(1, keepdim=True)
    y = diff_augment(x, "color", gen(2))
    y = y - y.mean(1, keepdim=True)
    ratio = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert ratio.min() >= 0 and ratio.max() < 3.0
    assert abs(ratio.mean().item() - 1.0) < 0.05          # E[2 u1] E[u2 + 0.5] = 1


def _find_shift(src, dst, s):
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            shifted = torch.zeros_like(src)
            h, w = src.shape[-2:]
            shifted[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                src[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
            if torch.equal(shifted, dst):
                return dy, dx
    raise AssertionError("output is not an integer translation of the input within the ratio")


def test_translation_is_integer_shift_per_sample():
    n, h, w = 64, 16, 8
    x = torch.rand(n, 3, h, w) + 0.5                       # strictly positive: zeros are shifted-in pixels
    out = diff_augment(x, "translation", gen(4))
    sy, sx = round(h * 0.125), round(w * 0.125)
    shifts = [_find_shift(x[i], out[i], max(sy, sx)) for i in range(n)]
    dys, dxs = {d[0] for d in shifts}, {d[1] for d in shifts}
    assert dys == set(range(-sy, sy + 1)) and dxs == set(range(-sx, sx + 1))


def test_cutout_square():
    n, h, w = 200, 16, 16
    x = torch.rand(n, 3, h, w) + 0.5
    out = diff_augment(x, "cutout", gen(5))
    zero = (out == 0)
    assert torch.equal(zero[:, :1].expand_as(zero), zero), "same mask for all channels"
    assert torch.equal(out[~zero], x[~zero])
    areas = []
    for i in range(n):
        rows = zero[i, 0].any(1).nonzero().flatten()
        cols = zero[i, 0].any(0).nonzero().flatten()
        assert len(rows) > 0 and len(cols) > 0
        assert len(rows) <= 8 and len(cols) <= 8, "square side is 0.5 * size"
        assert zero[i, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all(), "a filled rectangle"
        assert zero[i, 0].sum() == len(rows) * len(cols)
        areas.append(len(rows) * len(cols))
    assert max(areas) == 64 and min(areas) < 64               # clipped at the borders sometimes


def test_draws_are_per_sample_and_shared_across_inputs():
    x = torch.randn(8, 3, 16, 16)
    a, b = diff_augment([x, x.clone()], "color,translation,cutout", gen(6))
    assert torch.equal(a, b), "all inputs of one call share the draws"
    same = diff_augment(x[:1].expand(8, -1, -1, -1).contiguous(), "color,translation,cutout", gen(7))
    assert not torch.allclose(same[0], same[1]), "each sample gets its own draws"
    small = diff_augment([x, x[..., ::2, ::2]], "translation", gen(8))[1]
    assert small.shape == (8, 3, 8, 8)


def test_reproducible_and_content_independent():
    """Reals and fakes go through the same function; draws depend on the generator only."""
    reals, fakes = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    mask_r = diff_augment(torch.ones_like(reals), "translation,cutout", gen(9)) == 0
    mask_f = diff_augment(torch.ones_like(fakes) * 2, "translation,cutout", gen(9)) == 0
    assert torch.equal(mask_r, mask_f)
    torch.testing.assert_close(diff_augment(reals, "color,translation,cutout", gen(9)),
                               diff_augment(reals, "color,translation,cutout", gen(9)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtypes(dtype):
    x = torch.randn(2, 3, 8, 8).to(dtype)
    out = diff_augment(x, "color,translation,cutout", gen(10))
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out).all()
    ref = diff_augment(x.double(), "color,translation,cutout", gen(10))
    assert (out.double() - ref).norm() / ref.norm() < (1e-6 if dtype == torch.float32 else 2e-2)


def test_gradients_first_and_second_order():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)

    def f(t):
        return diff_augment(t, "color,translation,cutout", gen(11))

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_r1_style_double_backward_through_augment():
    """grad of D(aug(x)) w.r.t. x, then backward of its squared norm into D's weight."""
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    logits = torch.nn.functional.conv2d(torch.tanh(diff_augment(x, "color,translation,cutout", gen(12))), w).sum()
    (g,) = torch.autograd.grad(logits, x, create_graph=True)
    g.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    assert math.isfinite(g.sum().item())


def test_trainer_builds_diffaugment_for_aug_diffaug():
    """--aug diffaug (e.g. with StyleGAN2) gives a DiffAugment pipe with the --diffaug policy."""
    from ganops_models.training import augmentation
    from ganops_models.training.options import TrainOptions

    aug = augmentation.build(TrainOptions(aug="diffaug", diffaug="translation,cutout"), torch.device("cpu"))
    assert isinstance(aug.pipe, DiffAugment) and aug.pipe.policy == "translation,cutout" and aug.controller is None
    x = torch.randn(2, 3, 8, 8)
    assert aug.pipe(x).shape == x.shape
