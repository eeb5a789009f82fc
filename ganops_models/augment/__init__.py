"""Augmentations for discriminator training on few images: ADA (adaptive, StyleGAN2-ADA) and
DiffAugment (FastGAN/DCGAN recipes). All take and return float images [N, C, H, W] in [-1, 1]."""
from ganops_models.augment.ada import OPS, PRESETS, SETTINGS, AugmentPipe
from ganops_models.augment.ada_controller import AUG_MODES, AdaController, build_augment

__all__ = ["AUG_MODES", "AdaController", "AugmentPipe", "OPS", "PRESETS", "SETTINGS", "build_augment"]

# --- DiffAugment (owned by the DiffAugment engineer): add its imports and __all__ entries below ---
from ganops_models.augment.diffaugment import DiffAugment, diff_augment  # noqa: E402

__all__ += ["DiffAugment", "diff_augment"]
# --- end of DiffAugment ---
