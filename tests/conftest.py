"""Test setup: Triton runs through its interpreter on machines without a GPU, outputs are poisoned."""
import os

import torch

if not torch.cuda.is_available():
    # Must be set before any @triton.jit kernel is defined, i.e. before ganops is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ["GANOPS_POISON_OUTPUTS"] = "1"
os.environ.pop("GANOPS_IMPL", None)
