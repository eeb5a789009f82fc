"""StyleGAN3 recipe (``--cfg stylegan3-t`` / ``stylegan3-r``): the StyleGAN2-ADA recipe with StyleGAN3's G
and loss, as NVIDIA's stylegan3 ``train.py`` configures them.

* G: :class:`~ganops_models.models.stylegan3.network.Generator` with ``magnitude_ema_beta`` =
  0.5 ** (batch / 20000); config R (``config == 'r'``) uses 1x1 convolutions, radial
  down filters and twice ``--cbase``/``--cmax`` (D keeps them). Square resolutions only.
* D: StyleGAN2's; loss: :class:`~ganops_models.models.stylegan3.loss.StyleGAN3Loss` with the D blur
  ``--blur`` (initial sigma; preset: 10 for R, 0 for T) fading over batch * 200 / 32 kimg.
Everything else (lazy R1, ADA, G EMA, resume, DDP, metrics) is the StyleGAN2 recipe's.
On the CPU the recipe makes malloc keep freed memory for reuse (:mod:`.cpu_memory`): StyleGAN3's
large oversampled activations otherwise cost more in page faults than in arithmetic.
"""
import torch

from ganops_models.errors import OptionsError
from ganops_models.models.stylegan3.loss import StyleGAN3Loss
from ganops_models.models.stylegan3.network import Generator
from ganops_models.models.stylegan3.options import StyleGAN3Options
from ganops_models.training.cpu_memory import keep_freed_memory
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe, build_discriminator, network_options



def generator_options(opts) -> dict:
    """StyleGAN3 G kwargs (beyond z/c/w dims, resolution and channels) for the options."""
    config = opts.config
    common = network_options(opts, torch.device("cpu"))
    common.pop("channels_last")
    mult = 2 if config == "r" else 1
    return dict(common, channel_base=opts.cbase * mult, channel_max=opts.cmax * mult, mapping_layers=opts.map,
                magnitude_ema_beta=0.5 ** (opts.batch / 20e3), conv_kernel=1 if config == "r" else 3,
                use_radial_filters=config == "r")


def build_networks(opts, data: DataInfo, device: torch.device):
    """(StyleGAN3 G, StyleGAN2 D) for the options and data, on ``device``."""
    h, w = tuple(opts.resolution or data.resolution)
    if h != w:
        raise OptionsError(f"StyleGAN3 needs square images, got {w}x{h}")
    G = Generator(z_dim=opts.z_dim, c_dim=data.label_dim if opts.cond else 0, w_dim=opts.w_dim, img_resolution=h,
                  img_channels=data.num_channels, **generator_options(opts))
    return G.to(device).train().requires_grad_(False), build_discriminator(opts, data, device)


class StyleGAN3Recipe(StyleGAN2Recipe):
    name = "stylegan3"
    default_cfg = {"cpu": "stylegan3-t", "cuda": "stylegan3-t"}
    Options = StyleGAN3Options
    build_networks = staticmethod(build_networks)

    def __init__(self, opts, data: DataInfo, device, dist):
        if torch.device(device).type == "cpu":
            keep_freed_memory()
        super().__init__(opts, data, device, dist)

    def build_loss(self, **kwargs) -> StyleGAN3Loss:
        return StyleGAN3Loss(self.G, self.D, blur_init_sigma=self.opts.blur, blur_fade_kimg=self.opts.batch * 200 / 32,
                             **kwargs)

    def train_step(self, reals, labels, step: int, cur_nimg: int):
        self.loss.set_progress(cur_nimg)
        return super().train_step(reals, labels, step, cur_nimg)

    def graph_key(self, phase: str) -> tuple:
        """Also the blur filter's size (none, or its taps): it shrinks as the blur fades, a new capture each time."""
        taps = self.loss.blur_taps
        return super().graph_key(phase) + (None if taps is None else taps.numel(),)

    def arch_spec(self) -> dict:
        spec = super().arch_spec()
        for name in ("g_arch", "g_noise"):
            spec.pop(name)
        return {**spec, "config": self.opts.config}
