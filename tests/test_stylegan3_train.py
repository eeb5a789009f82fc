"""StyleGAN3-T/-R training presets on the CPU: NVIDIA's defaults resolved, a short run, resume, the D blur."""
import json
import os

import pytest
import torch
from helpers import write_image_folder

from ganops_models import load_network
from ganops_models.models.stylegan3.loss import StyleGAN3Loss, blur_filter
from ganops_models.tools.train import main as train_main
from ganops_models.formats import checkpoint as ckpt_lib

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def test_blur_filter_and_fade():
    f = blur_filter(10.0)
    k = torch.arange(-30, 31, dtype=torch.float32)
    assert f.shape == (61,) and torch.allclose(f, 2 ** -(k / 10) ** 2 / (2 ** -(k / 10) ** 2).sum())
    loss = StyleGAN3Loss(torch.nn.Linear(1, 1), None, blur_init_sigma=10, blur_fade_kimg=200)
    for nimg, sigma in ((0, 10.0), (100_000, 5.0), (250_000, 0.0)):
        loss.set_progress(nimg)
        assert loss.blur_sigma == pytest.approx(sigma)


def test_stylegan3_r_trains_and_resumes_on_cpu(tmp_path):
    data = write_image_folder(tmp_path / "data")
    common = ["--data", str(data), "--outdir", str(tmp_path / "runs"), "--batch", "4", "--tick", "0.004",
              "--snap", "1", "--workers", "0", "--device", "cpu", "--cbase", "128", "--cmax", "4"]
    assert train_main(["--cfg", "stylegan3-r", "--kimg", "0.004", "--resolution", "16"] + common) == 0
    run = ckpt_lib.run_dirs(str(tmp_path / "runs"))[0]
    opts = json.load(open(os.path.join(run, "options.json")))
    assert (opts["model"], opts["config"], opts["blur"]) == ("stylegan3", "r", 10.0)
    assert (opts["map"], opts["glr"], opts["dlr"], opts["pl_weight"], opts["style_mixing"], opts["gamma"]) == \
        (2, 0.0025, 0.002, 0.0, 0.0, pytest.approx(0.0002 * 16 * 16 / 32))
    net = load_network(run)
    assert net.kind == "stylegan3" and net.resolution == (16, 16)
    layer = getattr(net.G_ema.synthesis, net.G_ema.synthesis.layer_names[0])
    assert layer.weight.shape[2:] == (1, 1) and layer.down_filter.ndim == 2       # R: 1x1 convs, radial filters
    assert layer.out_channels == 8                                                 # R: 2x --cmax in G only
    assert net.D.b4.conv.weight.shape[0] == 4
    assert train_main(["--resume", "latest", "--kimg", "0.008"] + common) == 0
    ckpt = ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.008.pt"))
    assert ckpt["progress"]["step"] == 2 and ckpt["model"] == "stylegan3"
    # the G pass of Dmain moved the magnitude EMAs away from their initial 1
    assert not torch.equal(ckpt["state"]["G"]["synthesis.L1_36_8.magnitude_ema"], torch.ones([]))


def test_fine_tune_from_nvidia_stylegan3_pickle(tmp_path, capsys):
    """``train --resume X.pkl`` of a StyleGAN3-R snapshot: the pickle's networks and config, kimg 0."""
    import nvidia_pickles as nv
    from ganops_models.models.stylegan2.network import Discriminator
    from ganops_models.models.stylegan3.network import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=8, conv_kernel=1,
                  use_radial_filters=True, precision="fp32", num_fp16_res=0, conv_clamp=None)
    D = Discriminator(resolution=16, channel_base=128, channel_max=4, precision="fp32", num_fp16_res=0)
    g_kwargs = nv.EasyDict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                           mapping_kwargs=nv.EasyDict(num_layers=2), channel_base=256, channel_max=8, conv_kernel=1,
                           use_radial_filters=True, num_fp16_res=0, conv_clamp=None, magnitude_ema_beta=0.999)
    d_kwargs = nv.d_kwargs(D, 128, 4)
    pkl = nv.write_snapshot(tmp_path / "r.pkl", G, D, G, g_kwargs, d_kwargs, tmp_path / "m", augment_p=0.3,
                            src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    data = write_image_folder(tmp_path / "data")
    common = ["--data", str(data), "--outdir", str(tmp_path / "runs"), "--batch", "4", "--tick", "0.004",
              "--snap", "1", "--workers", "0", "--device", "cpu", "--resume", str(pkl)]
    assert train_main(["--cfg", "stylegan3-t"] + common) == 2
    assert "config t (the pickle has r)" in capsys.readouterr().err
    assert train_main(["--kimg", "0.004"] + common) == 0
    run = ckpt_lib.run_dirs(str(tmp_path / "runs"))[0]
    opts = json.load(open(os.path.join(run, "options.json")))
    assert (opts["cfg"], opts["config"], opts["blur"], opts["cbase"], opts["cmax"], opts["p"], opts["ada_kimg"]) == \
        ("stylegan3-r", "r", 0.0, 128, 4, pytest.approx(0.3), 100)
    state = ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.004.pt"))["state"]
    assert torch.allclose(state["G_ema"]["synthesis.input.weight"], G.synthesis.input.weight, atol=0.05)
    assert torch.equal(state["G_ema"]["synthesis.input.freqs"], G.synthesis.input.freqs)

