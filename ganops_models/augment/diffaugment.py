"""DiffAugment (Zhao et al. 2020): differentiable augmentation applied to reals and fakes alike.

Policies (combinable, comma separated, applied in this order; the default is ``color,translation``,
as in the official FastGAN trainer):
  * ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c`` and contrast
    ``(x - mean_chw) * (u + 0.5) + mean_chw``, one ``u ~ U[0, 1)`` per sample and op;
  * ``translation``: integer shift of up to ``ratio * size`` pixels (ratio 0.125) per sample and axis,
    zeros shifted in;
  * ``cutout``: one square of side ``ratio * size`` (ratio 0.5) per sample set to zero, centred
    anywhere in the image (clipped at the borders).

Images are float ``[N, C, H, W]`` (any range; the paper uses [-1, 1]). Every op is a differentiable
function of the image (additions, products, gathers), so gradients of any order flow through, e.g.
into R1. The same draws can be applied to several resolutions of the same batch (FastGAN's
full-size and auxiliary images): translation and cutout are drawn as fractions of the image size.
"""
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

POLICIES = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation"     # the official FastGAN/DiffAugment default
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: Union[str, Sequence[str], None]) -> List[str]:
    """'color,translation' -> ['color', 'translation']; '' / None / 'none' -> []."""
    if policy is None:
        return []
    if isinstance(policy, str):
        names = [p.strip() for p in policy.split(",") if p.strip()]
    else:
        names = [str(p).strip() for p in policy]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"diffaug policy: unknown {bad}; expected a comma-separated subset of {POLICIES}")
    if len(set(names)) != len(names):
        raise ValueError(f"diffaug policy: {names} names a policy twice")
    return names


def _color(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """u: [N, 3] uniform draws for brightness, saturation, contrast."""
    u = u.to(x.dtype)[:, :, None, None]
    x = x + (u[:, 0:1] - 0.5)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * (u[:, 1:2] * 2) + mean_c
    mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean_all) * (u[:, 2:3] + 0.5) + mean_all


def _translate(x: torch.Tensor, t: torch.Tensor, ratio: float) -> torch.Tensor:
    """t: [N, 2] fractions in [0, 1) mapped to uniform integer shifts in [-s, s], s = round(ratio * size)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = (t[:, 0] * (2 * sh + 1)).long().clamp(max=2 * sh) - sh
    dx = (t[:, 1] * (2 * sw + 1)).long().clamp(max=2 * sw) - sw
    # Output pixel (i, j) reads input (i - dy, j - dx); out-of-range reads give zero.
    rows = torch.arange(h, device=x.device)[None, :] - dy[:, None]           # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] - dx[:, None]           # [N, W]
    valid = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    bidx = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]    # [N, H, W, C]
    out = out * valid[..., None].to(x.dtype)
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, c: torch.Tensor, ratio: float) -> torch.Tensor:
    """c: [N, 2] fractions in [0, 1) giving the square's centre."""
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (c[:, 0] * (h + (1 - ch % 2))).long().clamp(max=h + (1 - ch % 2) - 1)
    cx = (c[:, 1] * (w + (1 - cw % 2))).long().clamp(max=w + (1 - cw % 2) - 1)
    rows = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)
    cols = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)
    inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(x: Union[torch.Tensor, Sequence[torch.Tensor]], policy=DEFAULT_POLICY,
                 generator: Optional[torch.Generator] = None,
                 translation_ratio: float = TRANSLATION_RATIO, cutout_ratio: float = CUTOUT_RATIO):
    """Apply ``policy`` to ``x`` ([N, C, H, W]) or to a list of images of the same batch at several
    resolutions (same per-sample draws for all of them). Returns the same structure."""
    names = parse_policy(policy)
    single = isinstance(x, torch.Tensor)
    xs = [x] if single else list(x)
    if not xs:
        raise ValueError("diff_augment: x must be a tensor or a non-empty list of tensors")
    for i, t in enumerate(xs):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or not t.is_floating_point():
            raise ValueError(f"diff_augment: x[{i}] must be a float tensor [N, C, H, W], got "
                             f"{getattr(t, 'shape', type(t))} {getattr(t, 'dtype', '')}")
        if t.shape[0] != xs[0].shape[0]:
            raise ValueError(f"diff_augment: x[{i}] has batch {t.shape[0]}, x[0] has {xs[0].shape[0]}")
    if not names:
        return x
    n, dev = xs[0].shape[0], xs[0].device
    draws = {}
    for name in names:  # draws in a fixed order so a seeded generator gives reproducible results
        k = 3 if name == "color" else 2
        draws[name] = torch.rand(n, k, generator=generator, device=dev)
    out = []
    for t in xs:
        for name in names:
            if name == "color":
                t = _color(t, draws[name])
            elif name == "translation":
                t = _translate(t, draws[name], translation_ratio)
            else:
                t = _cutout(t, draws[name], cutout_ratio)
        out.append(t)
    return out[0] if single else out


class DiffAugment(nn.Module):
    """nn.Module form of :func:`diff_augment`; ``policy=''`` is the identity."""

    def __init__(self, policy: str = DEFAULT_POLICY,
                 translation_ratio: float = TRANSLATION_RATIO, cutout_ratio: float = CUTOUT_RATIO):
        super().__init__()
        self.policy = ",".join(parse_policy(policy))
        if not 0 <= translation_ratio < 1:
            raise ValueError(f"translation_ratio must be in [0, 1), got {translation_ratio}")
        if not 0 <= cutout_ratio <= 1:
            raise ValueError(f"cutout_ratio must be in [0, 1], got {cutout_ratio}")
        self.translation_ratio = translation_ratio
        self.cutout_ratio = cutout_ratio

    def forward(self, x, generator: Optional[torch.Generator] = None):
        return diff_augment(x, self.policy, generator, self.translation_ratio, self.cutout_ratio)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
