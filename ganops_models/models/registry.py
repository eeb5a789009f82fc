"""The models ganops_models trains: each one's recipe and presets, collected from ``models/<name>/``.

Importing this module also registers the NVIDIA pickle builders of the style-based models with
:mod:`ganops_models.formats.nvidia`.
"""
from typing import Dict, Type

from ganops_models.errors import OptionsError
from ganops_models.models.dcgan import presets as dcgan_presets
from ganops_models.models.dcgan.recipe import DCGANRecipe
from ganops_models.models.fastgan import presets as fastgan_presets
from ganops_models.models.fastgan.recipe import FastGANRecipe
from ganops_models.models.progan import presets as progan_presets
from ganops_models.models.progan.recipe import ProGANRecipe
from ganops_models.models.stylegan2 import nvidia as _stylegan2_nvidia  # noqa: F401  (registers its builders)
from ganops_models.models.stylegan2 import presets as stylegan2_presets
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe
from ganops_models.models.stylegan3 import nvidia as _stylegan3_nvidia  # noqa: F401  (registers its builders)
from ganops_models.models.stylegan3 import presets as stylegan3_presets
from ganops_models.models.stylegan3.recipe import StyleGAN3Recipe
from ganops_models.training.presets import Preset
from ganops_models.training.recipe import Recipe

RECIPES: Dict[str, Type[Recipe]] = {r.name: r for r in (StyleGAN2Recipe, StyleGAN3Recipe, FastGANRecipe,
                                                          DCGANRecipe, ProGANRecipe)}
PRESETS: Dict[str, Preset] = {**stylegan2_presets.PRESETS, **stylegan3_presets.PRESETS, **fastgan_presets.PRESETS,
                              **dcgan_presets.PRESETS, **progan_presets.PRESETS}


def get_recipe(name: str) -> Type[Recipe]:
    if name not in RECIPES:
        raise OptionsError(f"--model must be one of {sorted(RECIPES)}, got {name!r}")
    return RECIPES[name]


__all__ = ["PRESETS", "RECIPES", "get_recipe"]
