"""Drop-in replacements for vendored StyleGAN op folders.

- ``ganops.compat.stylegan2_ada``: NVIDIA's ``torch_utils/ops`` of StyleGAN2-ADA and StyleGAN3
  (``bias_act``, ``upfirdn2d``, ``conv2d_resample``, ``conv2d_gradfix``, ``fma``, ``grid_sample_gradfix``).
- ``ganops.compat.rosinality``: rosinality's ``op/`` folder (``fused_leaky_relu``, ``FusedLeakyReLU``,
  ``upfirdn2d``, ``conv2d_gradfix``).

Importing them compiles nothing and works on a CPU-only machine.
"""
