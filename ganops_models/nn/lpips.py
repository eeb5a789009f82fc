"""LPIPS perceptual distance (Zhang et al. 2018) with a VGG16 trunk, weights from a local file.

``d(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 )`` over the VGG16 taps
relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, where ``|.|`` is the per-pixel channel norm and ``w_l``
the learned non-negative 1x1 "linear heads". Inputs are images in [-1, 1], ``[N, 3, H, W]``;
the result is ``[N]``.

Nothing is downloaded. The weights come from files the user provides:
  * the VGG16 trunk in torchvision's layout (``features.<i>.weight/bias``; a whole torchvision
    ``vgg16`` state dict works, its classifier is ignored), and
  * the linear heads in the ``lpips`` package layout (``lin<k>.model.1.weight``, ``[C_k, 1, 1, 1]``
    with or without the ``model.1`` part), e.g. ``lpips/weights/v0.1/vgg.pth``.
Both may be in one file (keys merged) or two files: ``load_lpips('vgg16.pth,vgg_lin.pth')``.
``load_lpips(..., unit_heads=True)`` accepts a VGG16 trunk alone and then weighs every channel 1 (LPIPS's
uncalibrated "baseline" distance). TorchScript files (e.g. NVIDIA's ``vgg16.pt``) contain code and are
refused, as are pickles that are not plain tensors (``torch.load(weights_only=True)``).
"""
import zipfile
from typing import Dict, List, Sequence, Union

import torch
from torch import nn
from ganops_models.errors import LPIPSWeightsError

# VGG16 "features": conv widths, 'M' = 2x2 max-pool. Taps after the ReLU of these conv indices.
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
TAP_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers: List[nn.Module] = []
    c = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
            c = v
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS-VGG distance; parameters are frozen (``requires_grad=False``), gradients flow to inputs."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        relu_ids = [i for i, m in enumerate(self.features) if isinstance(m, nn.ReLU)]
        self._taps = [relu_ids[k] for k in (1, 3, 6, 9, 12)]  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always a fixed metric
        return super().train(False)

    def _taps_of(self, x: torch.Tensor) -> List[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self._taps:
                out.append(h)
                if len(out) == len(self._taps):
                    break
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS: x and y must both be [N, 3, H, W], got {tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[-2:]) < 16:
            raise ValueError(f"LPIPS: images must be at least 16x16 (VGG16 pools 4 times), got {tuple(x.shape[-2:])}")
        n = x.shape[0]
        fx = self._taps_of(torch.cat([x, y]).float())
        total = x.new_zeros(n, dtype=torch.float32)
        for feat, lin in zip(fx, self.lins):
            a, b = feat[:n], feat[n:]
            a = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((a - b).square()).mean(dim=(1, 2, 3))
        return total

    def load_weights(self, state: Dict[str, torch.Tensor], unit_heads: bool = False) -> "LPIPS":
        """Load a merged dict of torchvision VGG16 keys and lpips linear-head keys (see module doc);
        ``unit_heads``: without any head keys, weigh every channel 1."""
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        lins = {}
        for k, v in state.items():
            for i in range(len(TAP_CHANNELS)):
                if k in (f"lin{i}.model.1.weight", f"lin{i}.weight", f"lins.{i}.weight"):
                    lins[f"{i}.weight"] = v
        self.unit_heads = unit_heads and not lins     # True: VGG16 features with unit heads, not LPIPS
        if self.unit_heads:
            lins = {f"{i}.weight": torch.ones([1, c, 1, 1]) for i, c in enumerate(TAP_CHANNELS)}
        missing_f = sorted(set(self.features.state_dict()) - set(feats))
        missing_l = sorted(set(self.lins.state_dict()) - set(lins))
        if missing_f or missing_l:
            raise LPIPSWeightsError(
                "LPIPS weights: missing " + ", ".join(
                    [f"features.{k}" for k in missing_f] + [f"lin{k.split('.')[0]}.model.1.weight" for k in missing_l])
                + " (need torchvision VGG16 'features.*' and lpips 'lin<k>.model.1.weight' tensors)")
        try:
            self.features.load_state_dict(feats)
            self.lins.load_state_dict(lins)
        except RuntimeError as e:
            raise LPIPSWeightsError(f"LPIPS weights: wrong shapes: {e}") from None
        return self


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/")[1:2] == ["code"] or n.endswith("/constants.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_lpips(paths: Union[str, Sequence[str]], device="cpu", unit_heads: bool = False) -> LPIPS:
    """Build LPIPS from one or more local weight files (comma-separated string or a list); see the
    module doc for ``unit_heads``."""
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    if not paths:
        raise LPIPSWeightsError("LPIPS weights: no file given")
    merged: Dict[str, torch.Tensor] = {}
    for p in paths:
        if _is_torchscript(p):
            raise LPIPSWeightsError(
                f"LPIPS weights: {p!r} is a TorchScript file (such as NVIDIA's vgg16.pt), which contains code "
                f"that ganops does not run; give torchvision's VGG16 state dict (vgg16-397923af.pth) instead, "
                f"optionally with the lpips heads (lpips/weights/v0.1/vgg.pth)")
        try:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise LPIPSWeightsError(f"LPIPS weights: file {p!r} does not exist") from None
        except Exception as e:  # unpickling / zip errors: say which file
            raise LPIPSWeightsError(f"LPIPS weights: cannot read {p!r}: {e}") from None
        if not isinstance(sd, dict):
            raise LPIPSWeightsError(f"LPIPS weights: {p!r} holds a {type(sd).__name__}, expected a state dict")
        merged.update(sd)
    return LPIPS().load_weights(merged, unit_heads).to(device)


def reconstruction_loss(kind: str, lpips_model: Union[LPIPS, None] = None):
    """Return ``fn(rec, target) -> scalar``, the SUM over the batch of a per-image distance (the
    official FastGAN sums LPIPS over the batch): 'lpips' (LPIPS distance) or 'mse' (per-image mean
    squared error)."""
    if kind == "mse":
        return lambda rec, target: (rec - target).square().flatten(1).mean(1).sum()
    if kind == "lpips":
        if lpips_model is None:
            raise ValueError("reconstruction_loss('lpips') needs an LPIPS model (load_lpips(path))")
        return lambda rec, target: lpips_model(rec, target).sum()
    raise ValueError(f"recon must be 'mse' or 'lpips', got {kind!r}")
