"""StyleGAN3's variant of the StyleGAN2 loss (NVIDIA's ``training/loss.py`` in the stylegan3 repo).

Two differences from :class:`~ganops_models.models.stylegan2.loss.StyleGAN2Loss`:

* D blur: every image D sees (fake, real, and the reals of R1) is first blurred with a Gaussian of
  sigma = max(1 - cur_nimg / (blur_fade_kimg * 1000), 0) * blur_init_sigma, taps
  f[k] = 2^(-(k / sigma)^2) for k in [-floor(3 sigma), floor(3 sigma)], normalised to sum 1
  (separable ``ganops.filter2d``); no blur once sigma * 3 < 1. Config R: sigma 10 fading over
  batch * 200 / 32 kimg; config T: no blur.
* The generator's EMAs (mapping ``w_avg`` and every layer's ``magnitude_ema``) are updated only by
  the generator pass of Dmain/Dboth, as NVIDIA's ``update_emas=True``.
"""
import math

import torch

import ganops

from ganops_models.models.stylegan2.loss import StyleGAN2Loss


def blur_filter(sigma: float, device=None) -> torch.Tensor:
    """Normalised 1-D taps 2^(-(k / sigma)^2), k = -floor(3 sigma)..floor(3 sigma); float32."""
    size = math.floor(sigma * 3)
    f = torch.arange(-size, size + 1, device=device, dtype=torch.float32).div(sigma).square().neg().exp2()
    return f / f.sum()


class StyleGAN3Loss(StyleGAN2Loss):
    def __init__(self, G, D, blur_init_sigma: float = 0.0, blur_fade_kimg: float = 0.0, **kwargs):
        super().__init__(G, D, **kwargs)
        self.blur_init_sigma, self.blur_fade_kimg = blur_init_sigma, blur_fade_kimg
        self.blur_sigma = 0.0
        self.blur_taps = None    # the blur filter of blur_sigma (a tensor: compiled phases take it as an input)
        self.phase = None

    def set_progress(self, cur_nimg: int) -> None:
        """Blur sigma (and filter) for the step that starts at ``cur_nimg`` images."""
        fade = max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) if self.blur_fade_kimg > 0 else 0
        self.blur_sigma = fade * self.blur_init_sigma
        taps = blur_filter(self.blur_sigma, self.pl_mean.device) if math.floor(self.blur_sigma * 3) > 0 else None
        if taps is not None and self.blur_taps is not None and taps.shape == self.blur_taps.shape:
            self.blur_taps.copy_(taps)    # in place: a captured step (--cuda-graphs) reads this buffer
        else:
            self.blur_taps = taps         # another filter size: another compiled variant / captured graph

    def run_G(self, z, c):
        update = self.phase in ("Dmain", "Dboth")
        ws = self.mixed_styles(z, c, update_w_avg=update)
        return self.G.synthesis(ws, update_emas=update), ws

    def run_D(self, img, c):
        if self.blur_taps is not None:
            img = ganops.filter2d(img, self.blur_taps)
        return super().run_D(img, c)

    def accumulate_gradients(self, phase: str, *args, **kwargs):
        self.phase = phase
        try:
            return super().accumulate_gradients(phase, *args, **kwargs)
        finally:
            self.phase = None
