"""``torch_utils.ops.bias_act`` API on ganops: ``bias_act(x, b=None, dim=1, act='linear', alpha=None,
gain=None, clamp=None, impl='cuda')`` and the ``activation_funcs`` table (``def_alpha``, ``def_gain``,
``has_2nd_grad``) that networks read default gains from."""
import types

from ...ops import _bias_act_spec
from ...ops.bias_act import bias_act as _bias_act
from .._impl import translate

activation_funcs = {
    name: types.SimpleNamespace(def_alpha=alpha, def_gain=gain,
                                has_2nd_grad=_bias_act_spec.has_second_derivative(_bias_act_spec.ACT_CODES[name]))
    for name, (alpha, gain) in _bias_act_spec.ACTIVATIONS.items()
}


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    """y = clamp(act(x + b) * gain, -clamp, clamp); see :func:`ganops.bias_act`."""
    return _bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=translate(impl))
