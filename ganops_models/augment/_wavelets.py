"""Wavelet filters used by ADA: sym6 for the 2x anti-aliased resampling, and a 4-band octave
filter bank (built from the sym2/db2 half-band) for image-space filtering.

sym6 is the 12-tap orthonormal Daubechies least-asymmetric low-pass filter (sum sqrt(2), unit norm,
orthogonal to its even shifts, 6 vanishing moments of its high-pass mirror; tests check all of it).
With it, downsample2d(upsample2d(x, f), f, flip_filter=True) == x away from the borders.
"""
import math

import numpy as np

SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)
NUM_BANDS = 4


def db2() -> np.ndarray:
    """The 4-tap Daubechies low-pass filter (sym2 is the same filter), in closed form."""
    s3 = math.sqrt(3.0)
    return np.array([1 + s3, 3 + s3, 3 - s3, 1 - s3]) / (4 * math.sqrt(2.0))


def _dilate(h: np.ndarray, factor: int) -> np.ndarray:
    """h(z) -> h(z**factor): factor - 1 zeros between taps."""
    out = np.zeros((len(h) - 1) * factor + 1)
    out[::factor] = h
    return out


def _centered(h: np.ndarray, length: int) -> np.ndarray:
    pad = (length - len(h)) // 2
    return np.pad(h, (pad, pad))


def octave_filter_bank() -> np.ndarray:
    """[4, 43] zero-phase filters splitting [0, pi] into octaves [0, pi/8], [pi/8, pi/4], [pi/4, pi/2],
    [pi/2, pi] (band 0 = lowest). With L(w) = |H(w)|^2 / 2 for the db2 low-pass H (a half-band filter,
    L(w) + L(w + pi) = 1) and Hi = 1 - L: band 3 = Hi(w), band 2 = L(w) Hi(2w), band 1 = L(w) L(2w) Hi(4w),
    band 0 = L(w) L(2w) L(4w). The bands sum to the identity (a unit impulse)."""
    h = db2()
    lo = np.convolve(h, h[::-1]) / 2                       # 7 taps, symmetric, DC gain 1
    hi = -lo.copy()
    hi[len(hi) // 2] += 1                                  # delta - lo
    bands, prefix = [], np.array([1.0])
    for level in range(NUM_BANDS - 1):
        bands.append(np.convolve(prefix, _dilate(hi, 2 ** level)))
        prefix = np.convolve(prefix, _dilate(lo, 2 ** level))
    bands.append(prefix)
    length = max(len(b) for b in bands)
    return np.stack([_centered(b, length) for b in bands[::-1]])
