"""``torch_utils.ops.bias_act`` API on ganops: ``bias_act(x, b=None, dim=1, act='linear', alpha=None,
gain=None, clamp=None, impl='cuda')`` and the ``activation_funcs`` table (``def_alpha``, ``def_gain``,
``has_2nd_grad``) that networks read default gains from."""
import types

from ...ops.bias_act import bias_act as _bias_act
from ...ref.activations import ACTIVATIONS
from .._impl import translate

activation_funcs = {
    name: types.SimpleNamespace(def_alpha=a.alpha, def_gain=a.gain, has_2nd_grad=not a.zero_second_derivative)
    for name, a in ACTIVATIONS.items()
}


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    """y = clamp(act(x + b) * gain, -clamp, clamp); see :func:`ganops.bias_act`."""
    return _bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=translate(impl))
