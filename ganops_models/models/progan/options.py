"""ProGAN's options: channels, minibatch-std group, loss and penalty weight, the growth schedule."""
import dataclasses
from typing import Optional

from ganops_models.errors import OptionsError
from ganops_models.training.options import TrainOptions, check_aug, check_nonnegative, option, redefault

LOSSES = ("wgan-gp", "logistic")


@dataclasses.dataclass
class ProGANOptions(TrainOptions):
    model: str = redefault("model", "progan")
    precision: Optional[str] = redefault("precision", "fp32")
    glr: float = redefault("glr", 0.001)
    dlr: float = redefault("dlr", 0.001)
    aug: str = redefault("aug", "noaug")
    gamma: float = option(10.0, "gradient penalty weight (WGAN-GP's lambda, or R1's gamma)", type=float)
    cbase: int = option(16384, "channel base: channels at resolution r are min(cbase / r, cmax)", type=int)
    cmax: int = option(512, "maximum channels", type=int)
    mbstd_group: int = option(4, "minibatch-std group size", type=int)
    lod_kimg: float = option(600.0, "kimg per stable and per fade-in phase (the official code's default; its paper "
                             "preset, --cfg progan: 800)", type=float)
    batch_per_res: str = option("", "batch per resolution, e.g. '256:14,512:6' (else --batch)")
    progan_loss: str = option("wgan-gp", "wgan-gp (with drift) or logistic (non-saturating + R1)", choices=LOSSES)

    def check(self, world_size: int) -> None:
        super().check(world_size)
        check_aug(self, ("noaug",))
        check_nonnegative(self, ("gamma",))
        if not self.lod_kimg > 0:
            raise OptionsError(f"--lod-kimg must be positive, got {self.lod_kimg}")
        if self.mbstd_group < 0 or self.cbase < 1 or self.cmax < 1:
            raise OptionsError("--mbstd-group must be >= 0 and --cbase, --cmax >= 1")
