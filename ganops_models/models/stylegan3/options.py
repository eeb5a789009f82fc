"""StyleGAN3's options: StyleGAN2's, plus the config (T or R) and D's blur."""
import dataclasses

from ganops_models.errors import OptionsError
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.training.options import option, redefault

CONFIGS = ("t", "r")


@dataclasses.dataclass
class StyleGAN3Options(StyleGAN2Options):
    model: str = redefault("model", "stylegan3")
    config: str = option("t", "StyleGAN3 config: t (translation equivariant) or r (rotation equivariant)", cli=False,
                         choices=CONFIGS)
    blur: float = option(0.0, "initial sigma of the D blur, fading over batch*200/32 kimg (preset: 10 for "
                         "stylegan3-r, 0 for stylegan3-t)", type=float, metavar="SIGMA")

    def check(self, world_size: int) -> None:
        super().check(world_size)
        if not self.blur >= 0:
            raise OptionsError(f"--blur must be >= 0, got {self.blur}")
