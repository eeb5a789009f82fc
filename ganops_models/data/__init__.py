"""Training data: folders / zips / dataset_tool output / the built-in dataset, and the batch loader.

The trainer calls ``ds = open_dataset(path_or_None, resolution, mirror, use_labels)`` and
``it = make_loader(ds, batch_size, rank, world_size, workers, seed, device)``; ``next(it)`` gives
uint8 images [B, 3, H, W] and float32 labels [B, label_dim] (see :func:`images_to_float`).
"""
from ganops_models.data.dataset import ImageDataset, open_dataset, reconfigure, resized_count
from ganops_models.errors import DatasetError
from ganops_models.data.image import CROP_MODES, TRANSFORMS, parse_resolution
from ganops_models.data.loader import InfiniteSampler, images_to_float, make_loader

__all__ = ["CROP_MODES", "DatasetError", "ImageDataset", "InfiniteSampler", "TRANSFORMS", "images_to_float",
           "make_loader", "open_dataset", "parse_resolution", "reconfigure", "resized_count"]
