"""StyleGAN2(-ADA)'s options: architecture, regularisation and rounds, on top of every model's."""
import dataclasses
import math
from typing import Any, Dict, Optional

from ganops_models.errors import OptionsError
from ganops_models.training.options import TrainOptions, check_nonnegative, option, redefault

ARCHITECTURES = ("orig", "skip", "resnet")


@dataclasses.dataclass
class StyleGAN2Options(TrainOptions):
    model: str = redefault("model", "stylegan2")
    supports_cuda_graphs = True     # the recipe captures its phases (training/cuda_graphs.py)
    batch_gpu: Optional[int] = option(
        None, "samples per round: each process accumulates its share of the batch in rounds of this size "
        "(NVIDIA's --batch-gpu; default: the preset's, or the batch of one process with an explicit --batch)", type=int)
    num_fp16_res: int = option(4, "how many of the highest resolutions use --precision", cli=False)
    nhwc: bool = option(False, "channels_last memory format for the low-precision blocks (NVIDIA's --nhwc)",
                        kind="bool")
    gamma: float = option(1.0, "R1 weight", type=float)
    map: int = option(8, "mapping network depth", flags=("--map-depth", "--map"), type=int, metavar="N")
    d_map: int = option(8, "depth of a conditional D's label mapping (0 in networks from TF)", cli=False)
    mbstd_group: int = option(4, "minibatch-std group size", type=int)
    cbase: int = option(32768, "channel base: channels at resolution r are min(cbase / r, cmax)", type=int)
    cmax: int = option(512, "maximum channels", type=int)
    w_dim: int = option(512, "intermediate latent (w) size", cli=False)
    conv_clamp: Optional[float] = option(256, "clamp of the convolution outputs in low precision", cli=False)
    pl_weight: float = option(2.0, "path-length regularisation weight", type=float)
    style_mixing: float = option(0.9, "style-mixing probability", type=float)
    r1_interval: int = option(16, "R1 every N steps, lazily (0: in every D step)", type=int)
    pl_interval: int = option(4, "path length every N steps, lazily (0: in every G step)", type=int)
    g_arch: str = option("skip", "G architecture", cli=False, choices=ARCHITECTURES)
    g_noise: bool = option(True, "per-pixel noise inputs in the synthesis layers", cli=False)
    d_arch: str = option("resnet", "D architecture", cli=False, choices=ARCHITECTURES)
    freezed: int = option(0, "Freeze-D: the first N discriminator layers (from the image side) get no updates",
                          type=int)

    def derive(self, given: Dict[str, Any], world_size: int, new_run: bool) -> Dict[str, str]:
        """NVIDIA train.py's rules: an explicit ``--batch`` without ``--batch-gpu`` makes one round per
        process; fp32 (``--fp32``) drops conv_clamp (a resumed run keeps its stored conv_clamp unless the
        command line sets the precision)."""
        why = super().derive(given, world_size, new_run)
        if "batch" in given and "batch_gpu" not in given or self.batch_gpu is None:
            self.batch_gpu = self.batch // world_size
            why["batch_gpu"] = "derived: --batch / processes (one round per process)"
        if self.precision == "fp32" and self.conv_clamp is not None and (new_run or "precision" in given):
            self.conv_clamp = None
            why["conv_clamp"] = "derived: fp32 has no conv_clamp"
        return why

    def check(self, world_size: int) -> None:
        super().check(world_size)
        per_process = self.batch // world_size
        if self.batch_gpu is not None and not (self.batch_gpu >= 1 and per_process % self.batch_gpu == 0):
            raise OptionsError(f"--batch-gpu {self.batch_gpu} must divide the batch of each process "
                               f"(--batch {self.batch} / {world_size} process(es) = {per_process})")
        check_nonnegative(self, ("gamma", "pl_weight"))
        if not 0 <= self.style_mixing <= 1:
            raise OptionsError(f"style mixing probability must be in [0, 1], got {self.style_mixing}")
        if self.freezed < 0:
            raise OptionsError(f"--freezed must be >= 0 (D layers to freeze), got {self.freezed}")
        if self.r1_interval < 0 or self.pl_interval < 0:
            raise OptionsError("regularisation intervals must be >= 0 (0: regularise in every main step)")
        if self.mbstd_group < 0 or self.map < 1 or self.cbase < 1 or self.cmax < 1:
            raise OptionsError("--mbstd-group must be >= 0 and --map, --cbase, --cmax >= 1")
        self._check_mbstd_group()

    def _check_mbstd_group(self) -> None:
        """D sees ``batch_gpu`` samples at once and groups them by gcd(--mbstd-group, batch_gpu). A round
        smaller than the group makes one group of the round (NVIDIA's min(group, N)); otherwise the
        group must divide the round, or it would shrink without a word (3 of 4: groups of 1, no signal)."""
        group, samples = self.mbstd_group, self.batch_gpu
        if group <= 1 or samples is None or math.gcd(group, samples) == min(group, samples):
            return
        divisor = max(d for d in range(1, group + 1) if samples % d == 0)
        raise OptionsError(f"--batch-gpu must be a multiple of --mbstd-group: --mbstd-group {group} does not divide "
                           f"the {samples} samples of each round (--batch {self.batch}, --batch-gpu {samples}), so the "
                           f"group would shrink to {math.gcd(group, samples)}; use --mbstd-group {divisor} or a "
                           f"batch that {group} divides")
