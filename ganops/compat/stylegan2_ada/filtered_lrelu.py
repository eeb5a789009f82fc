"""StyleGAN3's ``torch_utils.ops.filtered_lrelu`` API on ganops (same argument names, defaults and results)."""
import math
import numbers

from ...ops.filtered_lrelu import filtered_lrelu as _filtered_lrelu
from .._impl import translate


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None,
                   flip_filter=False, impl="cuda"):
    """upfirdn2d(x + b, fu, up) -> lrelu * gain -> clamp -> upfirdn2d(fd, down); see :func:`ganops.filtered_lrelu`."""
    if isinstance(padding, (list, tuple)):
        padding = [_python_int(p) for p in padding]
    return _filtered_lrelu(x, fu, fd, b, up=_python_int(up), down=_python_int(down), padding=_python_int(padding),
                           gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter, impl=translate(impl))


def _python_int(value):
    """numpy integers (StyleGAN3's layers compute their padding with numpy) as Python ints; anything
    else unchanged, for the op's own checks."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value
