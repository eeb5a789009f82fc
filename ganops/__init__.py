"""ganops: fused GAN kernels for PyTorch (CUDA, Triton and reference backends).

Every public op takes ``impl=None|'cuda'|'triton'|'ref'``; ``None`` picks the best backend for the
input's device and ``GANOPS_IMPL`` (or ``with ganops.forced_impl(name):``) forces one. ``python -m ganops`` shows what is built and used.
"""
from . import _extension

_extension.warn_if_unusable()

from ._registry import BACKENDS, BackendUnavailableError, forced_impl  # noqa: E402

# --- op families (each engineer adds the import lines of their family below this marker) ---
from .ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d  # noqa: E402
from .ops.bias_act import bias_act  # noqa: E402
from . import nn  # noqa: E402
from .ref.conv2d_gradfix import no_weight_gradients  # noqa: E402
from .ops.conv2d_resample import conv2d_resample  # noqa: E402
from .ops.modulated_conv2d import modulated_conv2d  # noqa: E402
from .ops.grid_sample import grid_sample  # noqa: E402
from .ops.sum_squares import sum_squares  # noqa: E402
from .ops.penalties import gradient_penalty, path_length_penalty, r1_penalty, trace_autograd  # noqa: E402
from .ops.filtered_lrelu import filtered_lrelu  # noqa: E402
# --- end of op families ---

__version__ = "0.1.0"

