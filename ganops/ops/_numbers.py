"""Checks of Python-number arguments that torch.compile traces.

With ``dynamic=True`` Dynamo passes float arguments and float attributes of modules as symbolic
floats; ``math.isfinite`` cannot take them (a graph break that makes Dynamo skip the whole calling
frame), comparisons can (their guard holds for every finite value, so no recompilation either).
"""
import math


def is_finite(value) -> bool:
    """math.isfinite(value) for a real number or a symbolic float (False for NaN and +-inf)."""
    return -math.inf < value < math.inf
