"""Drop-in for StyleGAN2-ADA / StyleGAN3 ``torch_utils.ops``:

    from ganops.compat.stylegan2_ada import bias_act, upfirdn2d, conv2d_resample, conv2d_gradfix, fma, grid_sample_gradfix
    from ganops.compat.stylegan2_ada import filtered_lrelu   # StyleGAN3
"""
from . import bias_act, conv2d_gradfix, conv2d_resample, filtered_lrelu, fma, grid_sample_gradfix, upfirdn2d

__all__ = ["bias_act", "conv2d_gradfix", "conv2d_resample", "filtered_lrelu", "fma", "grid_sample_gradfix", "upfirdn2d"]
