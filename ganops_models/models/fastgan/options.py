"""FastGAN's options: widths, D's reconstruction loss and its weights, the gradient penalty, resampling."""
import dataclasses
from typing import Optional

from ganops_models.augment.diffaugment import DEFAULT_POLICY
from ganops_models.errors import OptionsError
from ganops_models.training.options import TrainOptions, check_aug, option, redefault

RECON_LOSSES = ("mse", "lpips")
SAMPLE_BN = ("batch", "running")


@dataclasses.dataclass
class FastGANOptions(TrainOptions):
    model: str = redefault("model", "fastgan")
    precision: Optional[str] = redefault("precision", "fp32")
    mirror: bool = redefault("mirror", True)
    glr: float = redefault("glr", 2e-4)
    dlr: float = redefault("dlr", 2e-4)
    z_dim: int = redefault("z_dim", 256)
    aug: str = redefault("aug", "diffaug")
    diffaug: str = redefault("diffaug", DEFAULT_POLICY)
    ngf: int = option(64, "G base width", type=int)
    ndf: int = option(64, "D base width", type=int)
    recon: str = option("mse", "D's reconstruction loss", choices=RECON_LOSSES)
    lpips: Optional[str] = option(None, "LPIPS weights for --recon lpips: FILE or VGG16_FILE,LINEAR_HEADS_FILE "
                                  "(local files)")
    gp: float = option(0.0, "weight of ganops.gradient_penalty on D (0: off)", type=float)
    antialias: bool = option(False, "binomial-filtered resampling instead of nearest / average pooling",
                             kind="flag")
    sample_bn: str = option("batch", "BatchNorm statistics of G_ema's samples (grids, generate, metrics): each batch's, "
                            "as the official eval.py, or the running ones", choices=SAMPLE_BN)

    def check(self, world_size: int) -> None:
        super().check(world_size)
        check_aug(self, ("diffaug", "noaug"))
        if not self.gp >= 0:
            raise OptionsError(f"--gp must be >= 0, got {self.gp}")
        if self.ngf < 1 or self.ndf < 1:
            raise OptionsError(f"--ngf and --ndf must be >= 1, got {self.ngf} and {self.ndf}")
