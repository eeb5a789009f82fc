"""What a training preset (``--cfg``) is. The presets themselves live with their models
(``ganops_models/models/<name>/presets.py``) and are collected in :mod:`ganops_models.models.registry`.

A preset is a function ``(resolution (H, W), world_size) -> dict`` of option values; explicit
command-line values override them.
"""
import dataclasses
from typing import Callable, Tuple


@dataclasses.dataclass(frozen=True)
class Preset:
    model: str                                           # the recipe's name
    values: Callable[[Tuple[int, int], int], dict]       # (resolution, world_size) -> option values
    doc: str = ""
