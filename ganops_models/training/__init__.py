"""Training machinery shared by every model: options and presets, the recipe abstraction, the loop,
checkpoints, reporting and data-parallel helpers. Entry point: ``python -m ganops_models.train``."""
from .checkpoint import CheckpointError, load_checkpoint
from .options import OptionsError, TrainOptions
from .presets import PRESETS, Preset
from .recipes import RECIPES, DataInfo, Recipe, get_recipe

__all__ = ["CheckpointError", "DataInfo", "OptionsError", "PRESETS", "Preset", "RECIPES", "Recipe", "TrainOptions",
           "get_recipe", "load_checkpoint"]
