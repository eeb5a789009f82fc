"""Sane bounds for network settings read from files, checked before anything is built.

A network pickle or checkpoint names the sizes of the networks to build; a 200 KB file asking for
``channel_max=65536`` would otherwise allocate tens of gigabytes. The NVIDIA readers and the
checkpoint path both check the settings here (:func:`check_settings`), which raises a
:class:`CheckpointError` naming the file's field. The bounds (:data:`BOUNDS`):

=================  ================  ==================================================
setting            allowed           why
=================  ================  ==================================================
resolution         4 to 4096         power of two on each side (NVIDIA's largest: 1024)
img_channels       1 to 4            grey, RGB, RGBA
channel_base       1 to 2**20        NVIDIA: 16384 to 65536
channel_max        1 to 2048         NVIDIA: 512 (1024 for StyleGAN3-R)
z_dim, w_dim       1 to 4096         NVIDIA: 512
c_dim              0 to 100000       classes
mapping_layers     0 to 64           NVIDIA: 2 to 8
mbstd_num_channels 0 to 64           NVIDIA: 1
synthesis_layers   1 to 64           StyleGAN3's num_layers (NVIDIA: 14)
margin_size        0 to 256          StyleGAN3 (NVIDIA: 10)
filter_size        1 to 64           StyleGAN3 (NVIDIA: 6)
conv_kernel        1 to 7            StyleGAN3 (NVIDIA: 3 or 1)
=================  ================  ==================================================

and every resolution of the network must get at least one channel (``channel_base >= resolution``).
The implied size of a style-based network (:func:`estimate`: parameters of G and D, activations of one
image) must stay under :data:`MAX_PARAMETERS` and, with G, G_ema and D in float32 plus one image's
activations, under the machine's physical memory.
"""
import os
from typing import Dict, Optional, Tuple

from ganops_models.errors import CheckpointError

BOUNDS: Dict[str, Tuple[int, int]] = {
    "resolution": (4, 4096), "img_channels": (1, 4), "channel_base": (1, 2 ** 20), "channel_max": (1, 2048),
    "z_dim": (1, 4096), "w_dim": (1, 4096), "c_dim": (0, 100_000), "mapping_layers": (0, 64),
    "mbstd_num_channels": (0, 64), "synthesis_layers": (1, 64), "margin_size": (0, 256), "filter_size": (1, 64),
    "conv_kernel": (1, 7)}
MAX_PARAMETERS = 1_000_000_000
_COPIES = 4   # G, G_ema, D and the copy a load makes, float32 each


def machine_memory() -> int:
    """Physical memory in bytes (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def estimate(resolution: int, channel_base: int, channel_max: int, w_dim: int = 512, c_dim: int = 0,
             mapping_layers: int = 8) -> Tuple[int, int]:
    """(parameters of G and D, float32 activation bytes of one image) of a style-based network: two 3x3
    convolutions and their style affines per resolution 4..``resolution`` in G, the same convolutions
    in D, the mapping network and the label embedding."""
    params, activations, r = 0, 0, 4
    while r <= resolution:
        ch = min(channel_base // r, channel_max)
        params += 2 * (2 * ch * ch * 9 + 2 * w_dim * ch)
        activations += 4 * ch * r * r * 4     # a few buffers of ch x r x r floats in G and D
        r *= 2
    params += mapping_layers * w_dim * w_dim + c_dim * w_dim
    return params, activations


def _int(name: str, value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{where}: {name} is {value!r} ({type(value).__name__}), expected a whole number")
    return value


def check_settings(where: str, values: Dict[str, object], names: Optional[Dict[str, str]] = None,
                   memory: Optional[int] = None) -> None:
    """Check network ``values`` (keys of :data:`BOUNDS`; None or absent ones are skipped) read from a file;
    ``names`` maps a key to the file's name for it (e.g. 'channel_max' -> 'cmax') in messages, ``where``
    names the file and part. ``memory``: bytes available (default: the machine's). Raises
    :class:`CheckpointError` before anything is allocated."""
    names = names or {}
    got = {}
    for key, value in values.items():
        if value is None:
            continue
        name = names.get(key, key)
        sides = [value]
        if key == "resolution" and isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise CheckpointError(f"{where}: {name} is {value!r}, expected a size or [height, width]")
            sides = value
        low, high = BOUNDS[key]
        for side in sides:
            side = _int(name, side, where)
            if not low <= side <= high:
                raise CheckpointError(f"{where}: {name}={side} is out of bounds ({low} to {high}); no network "
                                      f"file asks for that, the file is corrupt or hostile")
            if key == "resolution" and side & (side - 1):
                raise CheckpointError(f"{where}: {name}={side} is not a power of two")
        got[key] = max(sides)
    if "resolution" in got and "channel_base" in got:
        if got["channel_base"] < got["resolution"]:
            raise CheckpointError(f"{where}: {names.get('channel_base', 'channel_base')}={got['channel_base']} gives "
                                  f"no channels at resolution {got['resolution']} (it must be at least the resolution)")
        params, activations = estimate(got["resolution"], got["channel_base"], got.get("channel_max", 512),
                                       got.get("w_dim", 512), got.get("c_dim", 0), got.get("mapping_layers", 8))
        memory = machine_memory() if memory is None else memory
        needed = params * 4 * _COPIES + activations
        if params > MAX_PARAMETERS or (memory and needed > memory):
            raise CheckpointError(f"{where}: these settings imply a network of about {params / 1e6:,.0f}M parameters "
                                  f"needing about {needed / 2 ** 30:,.1f} GiB (limit {MAX_PARAMETERS / 1e6:,.0f}M "
                                  f"parameters and this machine's {memory / 2 ** 30:,.1f} GiB); refused before "
                                  f"building it")
