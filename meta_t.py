import torch, traceback
import benchmarks.graph_breaks as gb
from ganops_models.models.dcgan.network import DCGANDiscriminator, DCGANGenerator
from ganops_models.models.fastgan.network import FastGANDiscriminator, FastGANGenerator
from ganops_models.models.progan.network import ProGANDiscriminator, ProGANGenerator
from ganops_models.models.stylegan2.network import Discriminator, Generator
from ganops_models.models.stylegan3.network import Generator as Generator3
builds = {
 "sg2G": lambda: Generator(resolution=64), "sg2D": lambda: Discriminator(resolution=64, c_dim=3),
 "sg3G": lambda: Generator3(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8, num_layers=4, num_critical=1, margin_size=2),
 "sg3Gr": lambda: Generator3(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8, num_layers=4, num_critical=1, margin_size=2, conv_kernel=1, use_radial_filters=True),
 "fG": lambda: FastGANGenerator(256), "fD": lambda: FastGANDiscriminator(256),
 "dG": lambda: DCGANGenerator(64), "dD": lambda: DCGANDiscriminator(64),
 "pG": lambda: ProGANGenerator(32), "pD": lambda: ProGANDiscriminator(32),
}
for k, b in builds.items():
    try:
        with torch.device("meta"):
            net = b()
        devs = {p.device.type for p in net.parameters()} ; bdev = {(n, t.device.type) for n, t in net.named_buffers() if t.device.type != "meta"}
        print(k, "ok", devs, sorted(bdev)[:3], len(bdev))
    except Exception as e:
        print(k, "FAIL", type(e).__name__, str(e)[:200]); traceback.print_exc(limit=-3)
