"""``torch_utils.ops.upfirdn2d`` API on ganops (same argument names, defaults and results)."""
from ...ops import upfirdn2d as _ops
from .._impl import translate

setup_filter = _ops.setup_filter


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return _ops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                          impl=translate(impl))


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return _ops.filter2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain, impl=translate(impl))


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return _ops.upsample2d(x, f, up=up, padding=padding, flip_filter=flip_filter, gain=gain, impl=translate(impl))


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return _ops.downsample2d(x, f, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                             impl=translate(impl))
