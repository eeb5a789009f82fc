"""Triton kernels and their launchers (wrapped as torch.library custom ops by ganops.ops)."""
