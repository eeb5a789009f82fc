"""StyleGAN2-ADA's adaptive augmentation pipeline (Karras et al. 2020), written on ganops ops.

``AugmentPipe(preset, p, **multipliers)`` maps images [N, C, H, W] in [-1, 1] (C = 3, or 1 for the
colour ops) to augmented images of the same shape. Each op fires independently per sample with
probability ``multiplier * p`` (``p`` is a buffer adjusted by :class:`AdaController`). In order:

  blit      xflip (x -> -x), rotate90 (k * 90 deg, k uniform in 0..3), xint (integer translation,
            uniform in +-xint_max of the size)
  geom      scale (isotropic, lognormal 2^N(0, scale_std)), rotate (uniform +-rotate_max * 180 deg,
            applied before and after aniso with probability 1 - sqrt(1 - rotate * p) each),
            aniso (x by s, y by 1/s, s = 2^N(0, aniso_std)), xfrac (translation N(0, xfrac_std) of the size)
  color     brightness (+N(0, brightness_std)), contrast (x 2^N(0, contrast_std)), lumaflip (reflect
            along the luma axis v = (1, 1, 1)/sqrt(3)), hue (rotate around v by +-hue_max * 180 deg),
            saturation (scale the component orthogonal to v by 2^N(0, saturation_std))
  filter    imgfilter: per octave band, gain 2^N(0, imgfilter_std), normalised to keep the expected power;
            the combined 1-D filter runs once per axis (a band-b pattern along x and y gets gain_b^2)
  noise     additive Gaussian noise with sigma = |N(0, noise_std)|
  cutout    a square of side cutout_size * size set to 0

The blits compose into one map per sample executed exactly as a gather (reflection outside the
image). The other geometric ops compose into one inverse affine map per sample, executed as:
reflect-pad, 2x upsample with the sym6 wavelet (ganops.upsample2d), bilinear ``ganops.grid_sample``
at 2x the output resolution, 2x downsample with the flipped wavelet (ganops.downsample2d). Colour ops
compose into one 4x4 matrix per sample. Everything is differentiable w.r.t. the images to any order
(R1 through the augmentation works).

``sample_params`` draws the per-sample parameters (identity values where an op does not fire) and
``apply`` is a deterministic function of the images and those parameters; ``forward`` does both.
"""
import functools
import math
from typing import Dict, Optional

import torch
from torch import nn

import ganops

from ganops_models.augment._wavelets import NUM_BANDS, SYM6, octave_filter_bank

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = BLIT + GEOM + COLOR + ("imgfilter", "noise", "cutout")

PRESETS = {
    "blit": BLIT, "geom": GEOM, "color": COLOR, "filter": ("imgfilter",), "noise": ("noise",), "cutout": ("cutout",),
    "bg": BLIT + GEOM,
    "bgc": BLIT + GEOM + COLOR,
    "bgcf": BLIT + GEOM + COLOR + ("imgfilter",),
    "bgcfn": BLIT + GEOM + COLOR + ("imgfilter", "noise"),
    "bgcfnc": BLIT + GEOM + COLOR + ("imgfilter", "noise", "cutout"),
}

SETTINGS = {
    "xint_max": 0.125, "scale_std": 0.2, "rotate_max": 1.0, "aniso_std": 0.2, "xfrac_std": 0.125,
    "brightness_std": 0.2, "contrast_std": 0.5, "hue_max": 1.0, "saturation_std": 1.0,
    "imgfilter_std": 1.0, "noise_std": 0.1, "cutout_size": 0.5,
}
# Expected share of an image's power in each octave band (low to high), used to normalise imgfilter gains.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
WARP_KEYS = ("scale", "rotate_pre", "aniso", "rotate_post", "xfrac")
_FILTER_PAD = len(SYM6) // 4   # border (output pixels) the 12-tap filter at 2x needs on each side


# --- per-sample matrices --------------------------------------------------------------------------

def _constant(values, device) -> torch.Tensor:
    """float32 tensor of ``values`` (a tuple) on ``device``, made once per device: no host-to-device copy
    on later calls, so a step that uses it can be captured in a CUDA graph (``--cuda-graphs``)."""
    return _cached_constant(tuple(values), torch.device(device))


@functools.lru_cache(maxsize=64)
def _cached_constant(values, device):
    return torch.tensor(values, dtype=torch.float32, device=device)


def _scalar(v, device) -> torch.Tensor:
    """A python number or tensor as a float32 tensor on ``device``; numbers by a fill kernel (no host copy)."""
    if isinstance(v, torch.Tensor):
        return v.to(device=device, dtype=torch.float32)
    return torch.full((), v, dtype=torch.float32, device=device)


def _stack(rows, n, device):
    """[[a, b, ...], ...] of scalars or [N] tensors -> [N, R, C] float32."""
    cols = [_scalar(v, device).expand(n) for row in rows for v in row]
    return torch.stack(cols, dim=1).reshape(n, len(rows), len(rows[0]))


def _translate2d(tx, ty, n, device):
    return _stack([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, device)


def _scale2d(sx, sy, n, device):
    return _stack([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, device)


def _rotate2d(cos, sin, n, device):
    return _stack([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], n, device)


def geometric_inverse(params: Dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
    """[N, 3, 3] map from output to input pixel coordinates (x right, y down, origin at the image
    centre) for the geometric ops in ``params``, applied in the order of BLIT + WARP_KEYS."""
    first = next(iter(params.values()))
    n, dev = first.shape[0], first.device
    g = torch.eye(3, device=dev).expand(n, 3, 3)
    if "xflip" in params:
        g = g @ _scale2d(1 - 2 * params["xflip"], 1, n, dev)
    if "rotate90" in params:
        k = params["rotate90"].long() % 4
        cos = _constant((1.0, 0.0, -1.0, 0.0), dev)[k]   # exact quarter turns
        sin = _constant((0.0, 1.0, 0.0, -1.0), dev)[k]
        g = g @ _rotate2d(cos, -sin, n, dev)
    if "xint" in params:
        t = params["xint"]
        g = g @ _translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height), n, dev)
    if "scale" in params:
        g = g @ _scale2d(1 / params["scale"], 1 / params["scale"], n, dev)
    if "rotate_pre" in params:
        g = g @ _rotate2d(torch.cos(params["rotate_pre"]), -torch.sin(params["rotate_pre"]), n, dev)
    if "aniso" in params:
        g = g @ _scale2d(1 / params["aniso"], params["aniso"], n, dev)
    if "rotate_post" in params:
        g = g @ _rotate2d(torch.cos(params["rotate_post"]), -torch.sin(params["rotate_post"]), n, dev)
    if "xfrac" in params:
        t = params["xfrac"]
        g = g @ _translate2d(-t[:, 0] * width, -t[:, 1] * height, n, dev)
    return g


def color_matrix(params: Dict[str, torch.Tensor]) -> torch.Tensor:
    """[N, 4, 4] affine map of homogeneous RGB for the colour ops in ``params`` (brightness first)."""
    first = next(iter(params.values()))
    n, dev = first.shape[0], first.device
    eye = torch.eye(4, device=dev)
    v = _constant((1.0, 1.0, 1.0, 0.0), dev) / math.sqrt(3)
    vv = torch.outer(v, v)
    c = eye.expand(n, 4, 4)
    if "brightness" in params:
        b = params["brightness"]
        c = _stack([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], n, dev) @ c
    if "contrast" in params:
        s = params["contrast"]
        c = _stack([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], n, dev) @ c
    if "lumaflip" in params:
        c = (eye - 2 * vv * params["lumaflip"].float()[:, None, None]) @ c
    if "hue" in params:
        c = _rotate_around(v[:3], params["hue"]) @ c
    if "saturation" in params:
        s = params["saturation"][:, None, None]
        sat = eye.repeat(n, 1, 1)
        sat[:, :3, :3] = vv[:3, :3] + (eye[:3, :3] - vv[:3, :3]) * s
        c = sat @ c
    return c


def _rotate_around(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] rotation by theta around the unit 3-vector ``axis`` (Rodrigues)."""
    n = theta.shape[0]
    x, y, z = axis.to(theta.device).unbind()      # cross-product matrix built on the device (no host read)
    zero = torch.zeros_like(x)
    k = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
    sin, cos = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r = torch.eye(3, device=theta.device) + sin * k + (1 - cos) * (k @ k)
    out = torch.eye(4, device=theta.device).repeat(n, 1, 1)
    out[:, :3, :3] = r
    return out


# --- execution ------------------------------------------------------------------------------------

def _reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Map any integer indices into 0..size-1 by symmetric (edge-excluded) reflection, repeatedly."""
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= size, period - idx, idx)


def reflect_pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Reflection padding of [N, C, H, W] of any width, differentiable to any order (index_select)."""
    cols = _reflect(torch.arange(-left, x.shape[3] + right, device=x.device), x.shape[3])
    rows = _reflect(torch.arange(-top, x.shape[2] + bottom, device=x.device), x.shape[2])
    return x.index_select(3, cols).index_select(2, rows)


def _blit(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Exact pixel blit: out[y, x] = images[reflect(g_inv (x, y))] for maps g_inv [N, 3, 3] that send
    pixel centres to pixel centres (flips, quarter turns, integer translations)."""
    n, ch, h, w = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(h, device=images.device) - cy,
                            torch.arange(w, device=images.device) - cx, indexing="ij")
    pts = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)              # [H, W, 3]
    src = torch.einsum("nij,hwj->nhwi", g_inv[:, :2], pts)
    ix = _reflect(torch.round(src[..., 0] + cx).long(), w)
    iy = _reflect(torch.round(src[..., 1] + cy).long(), h)
    index = (iy * w + ix).reshape(n, 1, h * w).expand(n, ch, h * w)
    return images.reshape(n, ch, h * w).gather(2, index).reshape(n, ch, h, w)


def _upsample_offset(f: torch.Tensor) -> float:
    """Where upsample2d(x, f, up=2) puts input pixel j: at 2x pixel 2j + offset. For a filter with
    centre of mass c (taps 0..k-1) and upsample2d's leading pad (k + 1) // 2, offset = c + pad + 1 - k
    (0.5 for any symmetric even filter; sym6 is slightly asymmetric)."""
    k = f.shape[-1]
    taps = torch.arange(k, dtype=torch.float64)
    centre = float((taps * f.double().cpu()).sum() / f.double().cpu().sum())
    return centre + (k + 1) // 2 + 1 - k


def _reflect_coords(u: torch.Tensor, size: int, margin: int) -> torch.Tensor:
    """Input pixel coordinates u (continuous, pixel centres at 0..size-1) beyond ``margin`` pixels outside
    the image, mirrored back into it as the (edge-excluded) reflection padding would place them."""
    if size == 1:
        return torch.zeros_like(u)
    period = 2 * (size - 1)
    r = u.remainder(period)
    mirrored = torch.where(r > size - 1, period - r, r)
    return torch.where((u < -margin) | (u > size - 1 + margin), mirrored, u)


def _warp(images: torch.Tensor, g_inv: torch.Tensor, f_up: torch.Tensor, impl,
          shift: Optional[float] = None) -> torch.Tensor:
    """Resample images with the per-sample inverse maps g_inv [N, 3, 3] (see the module docstring).

    The reflection margin is static (half the image plus the filter border on each side) so that no
    shape depends on the drawn maps (no host sync); sample points beyond it are mirrored back into
    the image, which the reflection padding would have done. ``shift``: ``_upsample_offset(f_up)``
    (computed here, reading the filter on the host, when not given)."""
    n, _, h, w = images.shape
    shift = _upsample_offset(f_up) if shift is None else shift
    dev, pad = images.device, _FILTER_PAD
    cx, cy = (w - 1) / 2, (h - 1) / 2
    mx, my = w // 2, h // 2                                                 # mirrored beyond these
    x = reflect_pad(images, mx + 2 * pad, mx + 2 * pad, my + 2 * pad, my + 2 * pad)
    x = ganops.upsample2d(x, f_up, up=2, impl=impl)                       # padded pixel j -> 2x pixel 2j + shift
    hu, wu = x.shape[2], x.shape[3]
    # Sample points: the output at 2x resolution (same convention), with `pad` pixels of border per side.
    ox = (torch.arange(2 * (w + 2 * pad), device=dev) - shift) / 2 - pad - cx
    oy = (torch.arange(2 * (h + 2 * pad), device=dev) - shift) / 2 - pad - cy
    yy, xx = torch.meshgrid(oy, ox, indexing="ij")
    pts = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)              # [Ho2, Wo2, 3]
    src = torch.einsum("nij,hwj->nhwi", g_inv[:, :2], pts)              # input centred coords
    sx = _reflect_coords(src[..., 0] + cx, w, mx + pad)
    sy = _reflect_coords(src[..., 1] + cy, h, my + pad)
    ux = 2 * (sx + mx + 2 * pad) + shift                                    # 2x-upsampled pixel index
    uy = 2 * (sy + my + 2 * pad) + shift
    grid = torch.stack([(2 * ux + 1) / wu - 1, (2 * uy + 1) / hu - 1], dim=-1).to(images.dtype)
    x = ganops.grid_sample(x, grid, impl=impl)
    return ganops.downsample2d(x, f_up, down=2, padding=-2 * pad, flip_filter=True, impl=impl)


def _color(images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    n, ch, h, w = images.shape
    c = c.to(images.dtype)
    flat = images.reshape(n, ch, h * w)
    if ch == 3:
        out = c[:, :3, :3] @ flat + c[:, :3, 3:]
    elif ch == 1:
        gray = c[:, :3, :].mean(dim=1, keepdim=True)                       # average of the RGB rows
        out = flat * gray[:, :, :3].sum(dim=2, keepdim=True) + gray[:, :, 3:]
    else:
        raise ValueError(f"images: colour augmentations need 1 or 3 channels, got {ch}")
    return out.reshape(n, ch, h, w)


def _filter(images: torch.Tensor, gains: torch.Tensor, fbank: torch.Tensor) -> torch.Tensor:
    """Separable per-sample filtering with sum_b gains[:, b] * fbank[b] (reflection padded)."""
    n, ch, h, w = images.shape
    taps = (gains.to(fbank.dtype) @ fbank).to(images.dtype)               # [N, L]
    k = taps.shape[1]
    weight = taps.repeat_interleave(ch, dim=0)                            # [N*C, L]
    x = reflect_pad(images, k // 2, k // 2, k // 2, k // 2).reshape(1, n * ch, h + k - 1, w + k - 1)
    x = torch.nn.functional.conv2d(x, weight[:, None, None, :], groups=n * ch)
    x = torch.nn.functional.conv2d(x, weight[:, None, :, None], groups=n * ch)
    return x.reshape(n, ch, h, w)


def _cutout(images: torch.Tensor, center: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    n, _, h, w = images.shape
    cx = (torch.arange(w, device=images.device) + 0.5) / w
    cy = (torch.arange(h, device=images.device) + 0.5) / h
    out_x = (cx[None, :] - center[:, :1]).abs() >= size[:, None] / 2     # [N, W]
    out_y = (cy[None, :] - center[:, 1:]).abs() >= size[:, None] / 2     # [N, H]
    keep = out_x[:, None, :] | out_y[:, :, None]
    return images * keep[:, None].to(images.dtype)


# --- the module -----------------------------------------------------------------------------------

class AugmentPipe(nn.Module):
    """ADA augmentation of images [N, C, H, W] in [-1, 1] (see the module docstring).

    preset: one of PRESETS (enables those ops with multiplier 1) or None; keyword arguments set the
    probability multiplier of any op in OPS (0 disables it) or a magnitude in SETTINGS. p: initial
    augmentation probability (the ``p`` buffer, saved with the state dict). impl: ganops backend.
    """

    def __init__(self, preset: Optional[str] = "bgc", p: float = 0.0, impl: Optional[str] = None, **kwargs):
        super().__init__()
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)} or None, got {preset!r}")
        self.multipliers = {op: 1.0 if preset is not None and op in PRESETS[preset] else 0.0 for op in OPS}
        self.settings = dict(SETTINGS)
        self.band_strengths = [1.0] * NUM_BANDS
        for key, value in kwargs.items():
            if key == "imgfilter_bands":
                if len(value) != NUM_BANDS or any(float(v) < 0 for v in value):
                    raise ValueError(f"imgfilter_bands must be {NUM_BANDS} non-negative numbers, got {value!r}")
                self.band_strengths = [float(v) for v in value]
                continue
            if key not in self.multipliers and key not in self.settings:
                raise TypeError(f"AugmentPipe got an unknown argument {key!r}; expected an op multiplier "
                                f"{OPS}, a setting {tuple(SETTINGS)} or imgfilter_bands")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
            (self.multipliers if key in self.multipliers else self.settings)[key] = float(value)
        _check_p(p)
        self.impl = impl
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("f_geom", ganops.setup_filter(list(SYM6)), persistent=False)
        self.f_geom_shift = _upsample_offset(self.f_geom)   # read once here, on the CPU
        self.register_buffer("fbank", torch.tensor(octave_filter_bank(), dtype=torch.float32), persistent=False)

    def extra_repr(self) -> str:
        on = {k: v for k, v in self.multipliers.items() if v > 0}
        return f"p={float(self.p):.4f}, ops={on}"

    # -- parameter draws ---------------------------------------------------------------------------
    def sample_params(self, n: int, device=None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Per-sample parameters of the enabled ops for a batch of n; identity where an op does not fire.

        Keys (present only for enabled ops): xflip [N] 0/1, rotate90 [N] 0..3 (k quarter turns, the
        same as torch.rot90(x, k, dims=(3, 2))), xint [N, 2] and xfrac [N, 2]
        (fractions of W, H), scale/aniso [N] factors, rotate_pre/rotate_post [N] radians, brightness [N],
        contrast [N], lumaflip [N] 0/1, hue [N] radians, saturation [N], imgfilter [N, 4] band gains,
        noise [N] sigma, cutout [N, 2] centre in [0, 1) and cutout_size [N] (0 = none)."""
        device = self.p.device if device is None else torch.device(device)
        p = self.p.to(device=device, dtype=torch.float32)
        m, s = self.multipliers, self.settings

        def rand(*shape):
            return torch.rand(n, *shape, device=device, generator=generator)

        def randn(*shape):
            return torch.randn(n, *shape, device=device, generator=generator)

        def fire(prob, value, identity):
            mask = rand() < prob
            if value.ndim > 1:
                mask = mask[:, None]
            return torch.where(mask, value, torch.full_like(value, identity))

        out = {}
        if m["xflip"] > 0:
            out["xflip"] = fire(m["xflip"] * p, torch.floor(rand() * 2), 0)
        if m["rotate90"] > 0:
            out["rotate90"] = fire(m["rotate90"] * p, torch.floor(rand() * 4), 0)
        if m["xint"] > 0:
            out["xint"] = fire(m["xint"] * p, (rand(2) * 2 - 1) * s["xint_max"], 0)
        if m["scale"] > 0:
            out["scale"] = fire(m["scale"] * p, torch.exp2(randn() * s["scale_std"]), 1)
        if m["rotate"] > 0:
            p_rot = 1 - torch.sqrt((1 - m["rotate"] * p).clamp(0, 1))
            out["rotate_pre"] = fire(p_rot, (rand() * 2 - 1) * math.pi * s["rotate_max"], 0)
        if m["aniso"] > 0:
            out["aniso"] = fire(m["aniso"] * p, torch.exp2(randn() * s["aniso_std"]), 1)
        if m["rotate"] > 0:
            out["rotate_post"] = fire(p_rot, (rand() * 2 - 1) * math.pi * s["rotate_max"], 0)
        if m["xfrac"] > 0:
            out["xfrac"] = fire(m["xfrac"] * p, randn(2) * s["xfrac_std"], 0)
        if m["brightness"] > 0:
            out["brightness"] = fire(m["brightness"] * p, randn() * s["brightness_std"], 0)
        if m["contrast"] > 0:
            out["contrast"] = fire(m["contrast"] * p, torch.exp2(randn() * s["contrast_std"]), 1)
        if m["lumaflip"] > 0:
            out["lumaflip"] = fire(m["lumaflip"] * p, torch.floor(rand() * 2), 0)
        if m["hue"] > 0:
            out["hue"] = fire(m["hue"] * p, (rand() * 2 - 1) * math.pi * s["hue_max"], 0)
        if m["saturation"] > 0:
            out["saturation"] = fire(m["saturation"] * p, torch.exp2(randn() * s["saturation_std"]), 1)
        if m["imgfilter"] > 0:
            power = _constant(BAND_POWER, device)
            gains = torch.ones(n, NUM_BANDS, device=device)
            for band, strength in enumerate(self.band_strengths):
                t = torch.ones(n, NUM_BANDS, device=device)
                t[:, band] = fire(m["imgfilter"] * p * strength, torch.exp2(randn() * s["imgfilter_std"]), 1)
                gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
            out["imgfilter"] = gains
        if m["noise"] > 0:
            out["noise"] = fire(m["noise"] * p, randn().abs() * s["noise_std"], 0)
        if m["cutout"] > 0:
            out["cutout_size"] = fire(m["cutout"] * p, torch.full((n,), s["cutout_size"], device=device), 0)
            out["cutout"] = rand(2)
        return out

    # -- execution ---------------------------------------------------------------------------------
    def apply(self, images: torch.Tensor, params: Dict[str, torch.Tensor],
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment ``images`` with drawn ``params`` (groups that are the identity for every sample are
        skipped, so the result is then exactly ``images``). ``generator`` drives the noise values."""
        _check_images(images)
        n, _, h, w = images.shape
        blit = {k: params[k] for k in BLIT if k in params}
        if blit:
            images = _if_any(_fires(blit), _blit(images, geometric_inverse(blit, h, w).to(images.device)), images)
        warp = {k: params[k] for k in WARP_KEYS if k in params}
        if warp:
            g_inv = geometric_inverse(warp, h, w).to(images.device)
            if images.dtype in (torch.float16, torch.bfloat16):   # sample coordinates need float32
                warped = _warp(images.float(), g_inv, self.f_geom, self.impl, self.f_geom_shift).to(images.dtype)
            else:
                warped = _warp(images, g_inv, self.f_geom, self.impl, self.f_geom_shift)
            images = _if_any(_fires(warp), warped, images)
        color = {k: params[k] for k in COLOR if k in params}
        if color:
            images = _if_any(_fires(color), _color(images, color_matrix(color).to(images.device)), images)
        if "imgfilter" in params:
            gains = params["imgfilter"].to(images.device)
            images = _if_any((gains != 1).any(), _filter(images, gains, self.fbank.to(images.device)), images)
        if "noise" in params:   # sigma 0 adds exactly 0
            noise = torch.randn(images.shape, device=images.device, generator=generator, dtype=images.dtype)
            images = images + noise * params["noise"].to(images.device, images.dtype)[:, None, None, None]
        if "cutout_size" in params:   # size 0 keeps every pixel
            images = _cutout(images, params["cutout"].to(images.device), params["cutout_size"].to(images.device))
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Draw parameters and apply them; at p = 0 nothing fires and the result equals ``images``
        (the draws still happen: whether p is 0 is not read on the host)."""
        _check_images(images)
        return self.apply(images, self.sample_params(images.shape[0], images.device))


_IDENTITY = {"xflip": 0, "rotate90": 0, "xint": 0, "scale": 1, "rotate_pre": 0, "aniso": 1, "rotate_post": 0,
             "xfrac": 0, "brightness": 0, "contrast": 1, "lumaflip": 0, "hue": 0, "saturation": 1}


def _fires(params: Dict[str, torch.Tensor]) -> torch.Tensor:
    """0-d bool tensor on the parameters' device: whether any sample has a non-identity value."""
    return torch.stack([(v != _IDENTITY[k]).any() for k, v in params.items()]).any()


def _if_any(fires: torch.Tensor, augmented: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``augmented`` where ``fires`` (0-d bool) else ``images`` unchanged, decided on the device."""
    return torch.where(fires.to(images.device), augmented, images)


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D [N, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [-1, 1], got {images.dtype}")


def _check_p(p) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"p must be a number in [0, 1], got {p!r}")
