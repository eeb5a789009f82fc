"""DCGAN's options: widths and the label tricks of its loss."""
import dataclasses

from ganops_models.errors import OptionsError
from ganops_models.training.options import TrainOptions, option, redefault



@dataclasses.dataclass
class DCGANOptions(TrainOptions):
    model: str = redefault("model", "dcgan")
    glr: float = redefault("glr", 2e-4)
    dlr: float = redefault("dlr", 2e-4)
    z_dim: int = redefault("z_dim", 100)
    aug: str = redefault("aug", "noaug")
    ngf: int = option(64, "G base width", type=int)
    ndf: int = option(64, "D base width", type=int)
    label_smoothing: float = option(0.0, "one-sided label smoothing (real target 1 - s)", type=float)
    label_noise: float = option(0.0, "probability of swapping real/fake targets per sample", type=float)

    def check(self, world_size: int) -> None:
        super().check(world_size)
        if not 0 <= self.label_smoothing < 1:
            raise OptionsError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.label_noise <= 0.5:
            raise OptionsError(f"--label-noise must be in [0, 0.5], got {self.label_noise}")
        if self.ngf < 1 or self.ndf < 1:
            raise OptionsError(f"--ngf and --ndf must be >= 1, got {self.ngf} and {self.ndf}")
