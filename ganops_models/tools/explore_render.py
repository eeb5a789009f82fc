"""The pictures of ``python -m ganops_models.explore``: one frame of a network for a set of widget settings.

A frame is what the CLI tools draw with the same settings: an integer seed with truncation psi, class and
noise mode gives ``generate``'s picture (same ws, one ``G.synthesis`` call, same uint8 rule); a style-mixed
frame is the cell of ``style_mixing``'s grid; a projected w gives ``generate --projected-w``'s picture.
Fractional seeds blend the ws of the four neighbouring seeds as NVIDIA's visualizer does (seed =
x + 100 y, weights (1 - |dx|)(1 - |dy|), blended around ``w_avg``). Networks without a w space (FastGAN,
DCGAN, ProGAN) draw integer seeds through ``generate``.
"""
import contextlib
import dataclasses
import math
import typing
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ganops_models.images import to_uint8
from ganops_models.network_loader import LoadedNetwork, seed_latents
from ganops_models.tools import generate, latent_space

SEED_STEP_Y = 100          # NVIDIA's latent widget: the seed of (x, y) is x + 100 y
NOISE_MODES = ("const", "random", "none")


@dataclasses.dataclass
class Settings:
    """Every widget of the page. ``x``/``y``: latent position (integers name seeds, fractions blend them);
    ``psi``/``cutoff``: truncation (cutoff None: all layers); ``mix_seed``: the seed whose ws replace layers
    ``mix_lo..mix_hi``; ``translate_x/y``, ``rotate``: StyleGAN3's input transform (degrees);
    ``projected``: index of a w of the ``--projected-w`` file instead of the seed; ``layer``: a synthesis
    layer to view (None: none), ``channel``: its channel (-1: the channel mean)."""
    x: float = 0.0
    y: float = 0.0
    psi: float = 1.0
    cutoff: Optional[int] = None
    noise_mode: str = "const"
    noise_seed: int = 0
    class_idx: Optional[int] = None
    mix_seed: Optional[int] = None
    mix_lo: int = 0
    mix_hi: int = 0
    translate_x: float = 0.0
    translate_y: float = 0.0
    rotate: float = 0.0
    projected: Optional[int] = None
    layer: Optional[str] = None
    channel: int = -1

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        """Settings from the page's JSON; ValueError naming the field for anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("settings must be a JSON object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        values = {}
        for name, value in data.items():
            kind, optional = _field_kind(fields[name].type)
            if value is None and optional:
                values[name] = None
            elif kind is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{name} must be a finite number, got {value!r}")
                values[name] = float(value)
            elif not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"{name} must be {'an integer' if kind is int else 'a string'}, got {value!r}")
            else:
                values[name] = value
        settings = cls(**values)
        if settings.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {settings.noise_mode!r}")
        for name in ("noise_seed", "mix_seed"):
            value = getattr(settings, name)
            if value is not None and not 0 <= value < 2 ** 32:
                raise ValueError(f"{name} must be in [0, 2**32), got {value}")
        return settings

    @property
    def seed(self) -> int:
        """The seed shown for the position (x, y): round(x) + 100 round(y), as a uint32."""
        return (round(self.x) + round(self.y) * SEED_STEP_Y) & 0xFFFFFFFF


def _field_kind(annotation):
    """(float, int or str; whether None is allowed) of a Settings field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return (args[0], True) if args else (annotation, False)


@dataclasses.dataclass
class Frame:
    """A rendered frame: ``image`` uint8 [H, W, 3]; ``layer_image`` the viewed feature map (uint8 [H, W, 3],
    scaled to the output size) or None; ``layers`` the viewable layers {name: [C, H, W]}."""
    image: np.ndarray
    layer_image: Optional[np.ndarray]
    layers: Dict[str, List[int]]


def blend_seeds(x: float, y: float) -> List[Tuple[int, float]]:
    """(seed, weight) of the neighbouring seeds of the latent position (x, y) (NVIDIA's latent widget);
    an integer position is one seed of weight 1."""
    out = []
    for ofs_x, ofs_y in ((0, 0), (1, 0), (0, 1), (1, 1)):
        seed_x, seed_y = math.floor(x) + ofs_x, math.floor(y) + ofs_y
        weight = (1 - abs(x - seed_x)) * (1 - abs(y - seed_y))
        if weight > 0:
            out.append(((seed_x + seed_y * SEED_STEP_Y) & 0xFFFFFFFF, weight))
    return out


def is_stylegan3(net: LoadedNetwork) -> bool:
    return isinstance(getattr(getattr(getattr(net.G_ema, "synthesis", None), "input", None), "transform", None),
                      torch.Tensor)


def _mapped(net: LoadedNetwork, seeds: List[int], s: Settings) -> Dict[int, torch.Tensor]:
    """{seed: ws [num_ws, w_dim]} with the settings' truncation and class."""
    unique = sorted(set(seeds))
    z = seed_latents(unique, net.z_dim).to(latent_space.generator_device(net))
    c = latent_space.class_labels(net, s.class_idx, len(unique))
    with torch.no_grad():
        ws = net.G_ema.mapping(z, c, truncation_psi=s.psi, truncation_cutoff=s.cutoff)
    return dict(zip(unique, ws))


def settings_ws(net: LoadedNetwork, s: Settings, projected: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of the settings: the projected w or the (blended) seed, then the style mix."""
    num_ws = net.G_ema.num_ws
    blend = blend_seeds(s.x, s.y)
    mix = s.mix_seed is not None
    if mix and not 0 <= s.mix_lo <= s.mix_hi < num_ws:
        raise ValueError(f"style-mixing layers must satisfy 0 <= from <= to < {num_ws}, got {s.mix_lo}-{s.mix_hi}")
    if s.cutoff is not None and not 0 <= s.cutoff <= num_ws:
        raise ValueError(f"cutoff must be in [0, {num_ws}] (or none), got {s.cutoff}")
    seeds = [seed for seed, _ in blend] if s.projected is None else []
    all_ws = _mapped(net, seeds + ([s.mix_seed] if mix else []), s) if seeds or mix else {}
    if s.projected is not None:
        if projected is None or not 0 <= s.projected < len(projected):
            raise ValueError(f"projected: no projected w #{s.projected} (start explore with --projected-w)")
        ws = projected[s.projected].to(latent_space.generator_device(net))
    elif len(blend) == 1:
        ws = all_ws[blend[0][0]]
    else:
        w_avg = net.G_ema.mapping.w_avg
        ws = w_avg + sum(weight * (all_ws[seed] - w_avg) for seed, weight in blend)
    ws = ws[None].clone()
    if mix:
        ws[:, s.mix_lo:s.mix_hi + 1] = all_ws[s.mix_seed][s.mix_lo:s.mix_hi + 1]
    return ws


@contextlib.contextmanager
def captured_outputs(module: torch.nn.Module):
    """Inside the block, forward hooks record the 4-D tensor outputs of every submodule of ``module`` (first
    sample) into the yielded dict under NVIDIA's visualizer names: ``name``, or ``name:i`` for the i-th of
    several outputs; ``module`` itself is 'output'."""
    captured, handles = {}, []

    def hook(name):
        def record(_module, _inputs, outputs):
            tensors = [o for o in (outputs if isinstance(outputs, (tuple, list)) else [outputs])
                       if isinstance(o, torch.Tensor) and o.ndim == 4]
            for i, t in enumerate(tensors):
                captured[(name or "output") + (f":{i}" if len(tensors) > 1 else "")] = t[0].detach()
        return record

    for name, sub in module.named_modules():
        handles.append(sub.register_forward_hook(hook(name)))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def feature_image(features: torch.Tensor, channel: int, size: Tuple[int, int]) -> np.ndarray:
    """A feature map [C, h, w] as a grey uint8 [H, W, 3] picture at ``size``: one channel (or, for -1, the
    channel mean) divided by its largest magnitude, nearest-neighbour scaled."""
    if not -1 <= channel < features.shape[0]:
        raise ValueError(f"channel must be -1 (mean) or in [0, {features.shape[0]}), got {channel}")
    f = features.float().mean(0) if channel < 0 else features[channel].float()
    f = f / f.abs().max().clamp(min=1e-8)
    f = torch.nn.functional.interpolate(f[None, None], size=tuple(size), mode="nearest")[0]
    return to_uint8(f).expand(3, -1, -1).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def render(net: LoadedNetwork, s: Settings, projected: Optional[torch.Tensor] = None) -> Frame:
    """The frame of ``s`` (see the module doc); ValueError for settings the network cannot take."""
    device = latent_space.generator_device(net)
    moved = (s.translate_x, s.translate_y, s.rotate) != (0, 0, 0)
    if moved and not is_stylegan3(net):
        raise ValueError("translate/rotate: only StyleGAN3 networks have an input transform")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(s.noise_seed)       # the noise of noise_mode 'random'
        if net.has_w_space:
            ws = settings_ws(net, s, projected)
            if is_stylegan3(net):
                latent_space.set_input_transform(net.G_ema, (s.translate_x, s.translate_y), s.rotate)
            with captured_outputs(net.G_ema.synthesis) as captured:
                image = latent_space.synthesize(net.G_ema, ws, s.noise_mode)[0]
        else:
            if (s.x, s.y) != (round(s.x), round(s.y)) or s.mix_seed is not None or s.projected is not None:
                raise ValueError(f"a {net.kind} network has no w space: integer seeds only (no blending, "
                                 f"style mixing or projected w)")
            with captured_outputs(net.G_ema) as captured:
                image = to_uint8(generate.generate(net, [s.seed], s.psi, s.class_idx, s.noise_mode))[0]
    layers = {name: list(t.shape) for name, t in captured.items()}
    layer_image = None
    if s.layer is not None:
        if s.layer not in captured:
            raise ValueError(f"layer {s.layer!r} is not a layer of this network")
        layer_image = feature_image(captured[s.layer], s.channel, image.shape[1:])
    return Frame(image.permute(1, 2, 0).numpy(), layer_image, layers)


def generate_command(network: str, s: Settings, device: str, projected_w: Optional[str] = None):
    """(the ``generate`` command that writes this frame's picture, its file name), or (None, why not)."""
    why = []
    if s.projected is None and (s.x, s.y) != (round(s.x), round(s.y)):
        why.append("a fractional seed (blend of seeds)")
    if s.mix_seed is not None:
        why.append("style mixing")
    if s.cutoff is not None and s.psi != 1:
        why.append("a truncation cutoff")
    if s.noise_mode == "random":
        why.append("random noise (generate draws new noise each time)")
    moved = (s.translate_x, s.translate_y, s.rotate) != (0, 0, 0)
    if moved and s.projected is not None:
        why.append("translate/rotate of a projected w")
    if why:
        return None, "generate has no setting for " + ", ".join(why)
    cmd = ["python", "-m", "ganops_models.generate", "--network", network]
    if s.projected is not None:
        cmd += ["--projected-w", projected_w]
        name = f"proj{s.projected:02d}.png"
    else:
        cmd += ["--seeds", str(s.seed), "--trunc", repr(s.psi)]
        cmd += ["--class", str(s.class_idx)] if s.class_idx is not None else []
        cmd += ["--translate", f"{s.translate_x!r},{s.translate_y!r}", "--rotate", repr(s.rotate)] if moved else []
        name = f"seed{s.seed:04d}.png"
    return cmd + ["--noise-mode", s.noise_mode, "--device", device, "--outdir", "out"], name
