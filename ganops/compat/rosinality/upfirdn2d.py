"""rosinality's ``upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0))``.

``up``/``down``: int or (x, y); ``pad``: (p0, p1) applied to both axes, or (x0, x1, y0, y1). The
kernel is a 2-D tensor used as a true convolution with no extra gain, as in the original.
"""
from ...ops.upfirdn2d import upfirdn2d as _upfirdn2d


def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
    pad = tuple(pad)
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    if len(pad) != 4:
        raise ValueError(f"pad must have 2 or 4 elements, got {pad!r}")
    return _upfirdn2d(input, kernel, up=up, down=down, padding=pad)
