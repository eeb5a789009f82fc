"""Decoding one image file to RGB and fitting it to the dataset resolution.

Resolutions are (H, W) tuples; on the command line they are written 'W' (square) or 'WxH'.
Fitting: ``center-crop`` crops the largest centred box with the target aspect and resizes it to
(W, H) (Lanczos, with an area pre-reduction for large downscales); ``center-crop-wide`` crops a
centred box of aspect W:(H/2), resizes it to W x H/2 and letterboxes it on black (StyleGAN2-ADA's
wide crop for e.g. cars); ``pad`` pads the image to the target aspect with its edge colour (the mean
colour of its outermost pixel ring), centred, then resizes; ``none`` resizes the whole image to (W, H)
without cropping (NVIDIA's dataset_tool with no --transform). Images already at the target size are
left untouched. ``--crop center|letterbox|pad|none`` on the command line names them (:data:`CROP_MODES`).

Decoding turns a photo upright by its EXIF orientation tag, as image viewers show it (off with
``exif_transpose=False``, dataset_tool's ``--no-exif-transpose``, for NVIDIA's stored-pixel reading).
"""
from typing import Tuple, Union

import numpy as np
from PIL import Image, ImageOps

from ganops_models.errors import DatasetError

TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "none")
CROP_MODES = {"center": "center-crop", "letterbox": "center-crop-wide", "pad": "pad", "none": "none"}
Resolution = Tuple[int, int]
ORIENTATION_TAG = 0x0112   # EXIF Orientation


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def parse_resolution(value: Union[None, int, str, Tuple[int, int]], what: str = "resolution"):
    """None -> None; 256 or '256' -> (256, 256); 'WxH' e.g. '256x128' -> (128, 256); a tuple is (H, W).

    Both sides must be powers of two >= 4 (the generator doubles its resolution per block)."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise DatasetError(f"{what} must be 'W' or 'WxH' in pixels (e.g. 256 or 256x128), got {value!r}") from None
        if len(nums) == 1:
            hw = (nums[0], nums[0])
        elif len(nums) == 2:
            hw = (nums[1], nums[0])
        else:
            raise DatasetError(f"{what} must be 'W' or 'WxH' in pixels (e.g. 256 or 256x128), got {value!r}")
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        hw = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        hw = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{what} must be None, an int, a 'WxH' string or an (H, W) tuple, got {value!r}")
    check_resolution(hw, what)
    return hw


def check_resolution(hw: Resolution, what: str = "resolution") -> None:
    h, w = hw
    if not (is_power_of_two(h) and is_power_of_two(w) and h >= 4 and w >= 4):
        raise DatasetError(f"{what} {w}x{h} (WxH) is not supported: width and height must be powers of two >= 4 "
                           f"(e.g. 64, 128, 256, 256x128); pick one with --resolution to resize on the fly, or "
                           f"prepare the images with `python -m ganops_models.dataset_tool --resolution ...`")


def _grey_to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grayscale image scaled by its type's range to 8-bit 'L':
    16-bit (and 32-bit integer holding 0..65535, as Pillow opens 16-bit files) by 255/65535, float
    in [0, 1] by 255; DatasetError for values outside those ranges (NaN included)."""
    arr = np.asarray(img).astype(np.float64)
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode == "F":
        if not (np.isfinite(arr).all() and 0 <= low and high <= 1):
            raise DatasetError(f"a floating-point image with values from {low:g} to {high:g}: only values in "
                               f"[0, 1] are understood; save it as an 8- or 16-bit image")
        top = 1.0
    else:
        if not (0 <= low and high <= 65535):
            raise DatasetError(f"a 32-bit integer image with values from {low:g} to {high:g}: only 8- and 16-bit "
                               f"images are understood; save it as an 8- or 16-bit image")
        top = 65535.0
    return Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. 16-bit, 32-bit and float grayscale is scaled by its range to 8 bits
    (:func:`_grey_to_8bit`); alpha is composited over white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        img = _grey_to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


_TURNED = (5, 6, 7, 8)   # EXIF orientations that swap width and height


def oriented_size(img: Image.Image, exif_transpose: bool = True):
    """(W, H) of an opened, not yet loaded image as :func:`decode` gives it (EXIF orientation applied
    unless disabled), from its header."""
    w, h = img.size
    # A PNG's eXIf chunk may follow the pixels; Pillow would decode them all to find it, so a header
    # read trusts only an eXIf chunk before them.
    in_header = img.format != "PNG" or "exif" in img.info
    turned = exif_transpose and in_header and img.getexif().get(ORIENTATION_TAG) in _TURNED
    return (h, w) if turned else (w, h)


def upright(img: Image.Image, exif_transpose: bool = True) -> Image.Image:
    """The loaded ``img`` turned as its EXIF orientation tag says (as image viewers show it), unless
    ``exif_transpose`` is False (the stored pixels, as NVIDIA's dataset_tool reads them)."""
    if exif_transpose and img.getexif().get(ORIENTATION_TAG, 1) != 1:
        return ImageOps.exif_transpose(img)
    return img


def decode(fileobj, exif_transpose: bool = True) -> Image.Image:
    """Fully decode an image file object to an RGB PIL image (raises on corrupt/truncated data), turned
    upright by its EXIF orientation unless ``exif_transpose`` is False."""
    with Image.open(fileobj) as img:
        img.load()
        return to_rgb(upright(img, exif_transpose))


def _crop_box(w: int, h: int, aspect: float):
    """The largest centred box of width/height ``aspect`` inside a w x h image (float coordinates)."""
    if w / h > aspect:
        cw = h * aspect
        return ((w - cw) / 2, 0.0, (w + cw) / 2, float(h))
    ch = w / aspect
    return (0.0, (h - ch) / 2, float(w), (h + ch) / 2)


def _resize(img: Image.Image, size, box) -> Image.Image:
    """Crop to ``box`` (rounded to whole pixels, so nothing outside it leaks in) and resize to ``size``."""
    img = img.crop(tuple(int(round(v)) for v in box))
    if img.size == tuple(size):
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _edge_colour(img: Image.Image):
    """Mean RGB of the outermost pixel ring, rounded."""
    arr = np.asarray(img, dtype=np.float64)
    ring = np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]])
    return tuple(int(round(v)) for v in ring.mean(0))


def _pad_to_aspect(img: Image.Image, aspect: float) -> Image.Image:
    """The image centred on the smallest canvas of width/height ``aspect`` that holds it, filled with
    its edge colour."""
    w, h = img.size
    cw, ch = (max(w, int(round(h * aspect))), h) if w / h < aspect else (w, max(h, int(round(w / aspect))))
    if (cw, ch) == (w, h):
        return img
    canvas = Image.new("RGB", (cw, ch), _edge_colour(img))
    canvas.paste(img, ((cw - w) // 2, (ch - h) // 2))
    return canvas


def _source_box_size(size, hw: Resolution, transform: str):
    """(width, height) of the part of a ``size`` = (w, h) image that is scaled to the output picture."""
    w, h = size
    th, tw = hw
    if transform == "center-crop":
        box = _crop_box(w, h, tw / th)
    elif transform == "center-crop-wide":
        box = _crop_box(w, h, tw / (th // 2))
    else:
        return w, h
    return box[2] - box[0], box[3] - box[1]


def upscale_factor(size, hw: Resolution, transform: str) -> float:
    """How much an image of ``size`` = (w, h) is enlarged by :func:`fit` (the larger of both axes;
    < 1 for a downscale)."""
    th, tw = hw
    bw, bh = _source_box_size(size, hw, transform)
    if transform == "pad":
        return min(tw / bw, th / bh)
    if transform == "center-crop-wide":
        th = th // 2
    return max(tw / bw, th / bh)


def upscaled_message(names, sizes, hw: Resolution, transform: str, limit: float = 2.0, shown: int = 20):
    """A warning naming the images that :func:`fit` enlarges by more than ``limit`` (they will look
    blurry), or None when there are none."""
    hits = [(n, upscale_factor(s, hw, transform)) for n, s in zip(names, sizes)]
    hits = [(n, f) for n, f in hits if f > limit]
    if not hits:
        return None
    th, tw = hw
    listed = ", ".join(f"{n} ({f:.1f}x)" for n, f in hits[:shown])
    more = f" and {len(hits) - shown} more" if len(hits) > shown else ""
    return (f"{len(hits)} image(s) had to be upscaled by more than {limit:g}x to {tw}x{th} and will look blurry: "
            f"{listed}{more}; use a lower --resolution or drop them")


def fit(img: Image.Image, hw: Resolution, transform: str = "center-crop") -> np.ndarray:
    """RGB PIL image -> uint8 array [H, W, 3] at resolution hw with the given transform."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    th, tw = hw
    w, h = img.size
    if transform in ("center-crop", "pad", "none"):
        if transform == "pad":
            img = _pad_to_aspect(img, tw / th)
        if img.size != (tw, th):
            box = _crop_box(*img.size, tw / th) if transform == "center-crop" else (0, 0) + img.size
            img = _resize(img, (tw, th), box)
        return np.asarray(img, dtype=np.uint8)
    band_h = th // 2
    band = _resize(img, (tw, band_h), _crop_box(w, h, tw / band_h))
    canvas = Image.new("RGB", (tw, th))
    canvas.paste(band, (0, (th - band_h) // 2))
    return np.asarray(canvas, dtype=np.uint8)
