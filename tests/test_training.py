"""Training options, presets, checkpoints, ADA feedback, and end-to-end CPU runs of the trainer
(built-in data, an image folder, kill-and-resume, two-process gloo)."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_close, backend_cases, gpu

from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.models.stylegan2.loss import StyleGAN2Loss
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.errors import CheckpointError
from ganops_models.training.distributed import DistInfo
from ganops_models.tools.train import new_run_options
from ganops_models.training.options import TrainOptions, parse_resolution
from ganops_models.errors import OptionsError
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A micro configuration: 16x16, <= 8 channels, 2 steps of 4 images per tick.
MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "1", "--workers", "0", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)   # the CPU runs use the reference ops
    return env


def _train(args, cwd, check=True, module="ganops_models.train"):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


def _run_dir(outdir):
    runs = ckpt_lib.run_dirs(str(outdir))
    assert len(runs) == 1, runs
    return runs[0]


def _stats(run_dir):
    with open(os.path.join(run_dir, "stats.jsonl")) as f:
        return [json.loads(line) for line in f]


# --- options and presets ---------------------------------------------------------------------------

def test_presets_have_stylegan2_ada_values():
    paper256 = new_run_options({"cfg": "paper256"}, (256, 256), 1).options
    assert (paper256.batch, paper256.gamma, paper256.cbase, paper256.cmax, paper256.ema, paper256.map,
            paper256.mbstd_group, paper256.glr, paper256.dlr) == (64, 1, 16384, 512, 20, 8, 8, 0.0025, 0.0025)
    auto = new_run_options({"cfg": "auto"}, (256, 256), 1).options
    assert (auto.batch, auto.mbstd_group, auto.cbase, auto.map, auto.ema_rampup) == (16, 4, 16384, 2, 0.05)
    assert auto.gamma == pytest.approx(0.0002 * 256 ** 2 / 16) and auto.ema == pytest.approx(5.0)
    cifar = new_run_options({"cfg": "cifar"}, (32, 32), 2).options
    assert (cifar.pl_weight, cifar.style_mixing, cifar.d_arch, cifar.gamma, cifar.mbstd_group) == \
        (0, 0, "orig", 0.01, 32)
    p1024 = new_run_options({"cfg": "paper1024"}, (1024, 1024), 8).options
    assert (p1024.batch, p1024.gamma, p1024.cbase, p1024.glr) == (32, 2, 32768, 0.002)
    # explicit values win over the preset
    o = new_run_options({"cfg": "paper512", "batch": 8, "gamma": 3.5, "glr": 0.001, "map": 4, "ema": 2, "mbstd_group": 2,
                 "cbase": 1024, "cmax": 64}, (512, 512), 1).options
    assert (o.batch, o.gamma, o.glr, o.dlr, o.map, o.ema, o.mbstd_group, o.cbase, o.cmax) == \
        (8, 3.5, 0.001, 0.0025, 4, 2, 2, 1024, 64)
    assert StyleGAN2Options.from_dict(o.to_dict()) == o


def test_model_options_merge_defaults_preset_and_cli_and_say_where_each_came_from():
    resolved = new_run_options({"cfg": "fastgan-lite", "ndf": 16, "gp": 0.5}, (64, 64), 1)
    o, sources = resolved.options, resolved.sources
    assert type(o).__name__ == "FastGANOptions" and o.model == "fastgan"
    assert (o.ndf, o.gp) == (16, 0.5) and sources["ndf"] == sources["gp"] == "command line"
    assert (o.ngf, o.recon) == (8, "mse") and sources["ngf"] == sources["recon"] == "preset fastgan-lite"
    assert (o.antialias, o.aug) == (False, "diffaug") and sources["antialias"] == "default"
    assert set(sources) == {f.name for f in dataclasses.fields(o)}
    assert not hasattr(o, "pl_weight")                     # StyleGAN2's options are not FastGAN's


def test_options_of_another_model_are_refused():
    with pytest.raises(OptionsError, match=r"--pl-weight \(command line\): --model fastgan does not have this option"):
        new_run_options({"cfg": "fastgan-lite", "pl_weight": 1.0}, (64, 64), 1)


def test_records_of_the_single_options_class_still_load():
    """options.json / checkpoints written before the per-model classes: every model's fields at the
    top and the model's own under 'extra'."""
    from ganops_models.models.fastgan.options import FastGANOptions
    from ganops_models.models.stylegan3.options import StyleGAN3Options
    legacy = {**StyleGAN2Options(precision="fp32").to_dict(), "model": "fastgan", "cfg": "fastgan-lite",
              "extra": {"ngf": 8, "ndf": 8, "recon": "mse"}}
    o = FastGANOptions.from_dict(legacy)
    assert (o.ngf, o.recon, o.model) == (8, "mse", "fastgan") and not hasattr(o, "cbase")
    sg3 = StyleGAN3Options.from_dict({**StyleGAN2Options().to_dict(), "model": "stylegan3",
                                      "extra": {"config": "r", "blur": 10.0}})
    assert (sg3.config, sg3.blur) == ("r", 10.0)
    with pytest.raises(OptionsError, match="unknown option"):
        FastGANOptions.from_dict({**legacy, "warp_speed": 9})


def test_option_errors():
    assert parse_resolution("256x128") == (128, 256) and parse_resolution("64") == (64, 64)
    for bad in ("100", "256x100", "2048", "8", "abc", "256x32"):
        with pytest.raises(OptionsError, match="resolution"):
            parse_resolution(bad)
    with pytest.raises(OptionsError, match="not divisible by the number of processes"):
        new_run_options({"cfg": "paper256", "batch": 30}, (256, 256), 4).options
    with pytest.raises(OptionsError, match="--cfg"):
        new_run_options({"cfg": "huge"}, (256, 256), 1).options
    with pytest.raises(OptionsError, match="--aug fixed needs --p"):
        new_run_options({"cfg": "tiny", "aug": "fixed"}, (32, 32), 1).options
    with pytest.raises(OptionsError, match="--gamma"):
        new_run_options({"cfg": "tiny", "gamma": -1.0}, (32, 32), 1).options
    with pytest.raises(OptionsError, match="--metrics"):
        new_run_options({"cfg": "tiny", "metrics": "fid_sometimes"}, (32, 32), 1).options


def test_time_estimate_after_the_calibration_steps(monkeypatch):
    from ganops_models.training import guide
    now = {"step": 0}
    monkeypatch.setattr(guide.time, "perf_counter", lambda: 3.0 * now["step"])   # every step takes 3 s

    def run(estimate, steps):
        said = []
        for step in steps:
            now["step"] = step
            message = estimate.step_done(step)
            if message is not None:
                said.append((step, message))
        return said

    demo = TrainOptions(cfg="tiny", data=None, kimg=2, batch=20, resolution=(32, 32))
    said = run(guide.TimeEstimate(demo, first_step=0, cur_nimg=0, device=torch.device("cpu")), range(1, 40))
    # 100 steps left x 3 s x 1.15 (snapshots, regularisation) = 345 s
    assert said == [(1 + guide.CALIBRATION_STEPS, "a short demo run: ~6 min on this CPU (the tiny StyleGAN2 at "
                     "32x32 on the built-in shapes, 2 kimg); watch the fakes*.png grids in the run folder")]
    other = TrainOptions(cfg="paper256", data="x", kimg=200, batch=50)
    said = run(guide.TimeEstimate(other, first_step=10, cur_nimg=50000, device=torch.device("cuda")), range(11, 40))
    assert said == [(11 + guide.CALIBRATION_STEPS, "estimated training time: ~2.9 h on this GPU (200 kimg)")]
    # 3000 steps left x 3 s x 1.15 = 2.875 h


def test_usage_errors_are_one_line(capsys):
    from ganops_models.tools.train import main
    with pytest.raises(SystemExit) as exit_info:
        main(["--cfg", "nonsense"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and "usage" not in err
    assert lines[0].startswith("python -m ganops_models.train: error: argument --cfg: invalid choice: 'nonsense' "
                               "(choose from 'auto', ") and lines[0].endswith(" (see --help)")


def test_cli_reports_bad_data_before_training(tmp_path, capsys):
    from ganops_models.tools.train import main
    assert main(["--data", str(tmp_path / "missing"), "--outdir", str(tmp_path / "runs"), "--device", "cpu"]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--data", str(tmp_path / "empty"), "--outdir", str(tmp_path / "runs"), "--device", "cpu"]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["--resolution", "48", "--outdir", str(tmp_path / "runs"), "--device", "cpu"]) == 2
    assert "powers of two" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# --- checkpoints -------------------------------------------------------------------------------------

def _micro_recipe(aug="ada"):
    opts = StyleGAN2Options(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                        device="cpu", aug=aug, ada_kimg=0.2, r1_interval=2, pl_interval=2, mbstd_group=2)
    return StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo()), opts


def _save(recipe, opts, path, nimg=8):
    ckpt_lib.save_checkpoint(str(path), model="stylegan2", arch=recipe.arch_spec(), options=opts.to_dict(),
                             data={"resolution": [16, 16], "num_channels": 3, "label_dim": 0, "name": "t"},
                             progress={"cur_nimg": nimg, "step": nimg // 4, "tick": 1}, state=recipe.state_dict())


def test_checkpoint_round_trip_restores_everything(tmp_path):
    torch.manual_seed(0)
    recipe, opts = _micro_recipe()
    for step in range(4):
        recipe.train_step(torch.randn(4, 3, 16, 16).clamp(-1, 1), torch.zeros(4, 0), step, step * 4)
    recipe.augment.pipe.p.fill_(0.37)
    path = tmp_path / "checkpoint-000000.016.pt"
    _save(recipe, opts, path, 16)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    ckpt = ckpt_lib.load_checkpoint(str(path))
    assert ckpt["progress"] == {"cur_nimg": 16, "step": 4, "tick": 1}
    other, _ = _micro_recipe()
    ckpt_lib.check_compatible(ckpt, "stylegan2", other.arch_spec())
    other.load_state_dict(ckpt["state"])
    assert other.augment_p == pytest.approx(0.37)
    assert other.augment.controller.state_dict() == recipe.augment.controller.state_dict()
    assert torch.equal(other.loss.pl_mean, recipe.loss.pl_mean) and recipe.loss.pl_mean > 0
    for a, b in [(recipe.G, other.G), (recipe.D, other.D), (recipe.G_ema, other.G_ema)]:
        for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), n
    for a, b in [(recipe.opt_G, other.opt_G), (recipe.opt_D, other.opt_D)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        for k in sa["state"]:
            assert float(sa["state"][k]["step"]) == float(sb["state"][k]["step"])
            assert torch.equal(sa["state"][k]["exp_avg_sq"], sb["state"][k]["exp_avg_sq"])
    assert float(other.opt_D.state_dict()["state"][0]["step"]) == 4 + 2   # Dmain x4 + Dreg (steps 0, 2)


def test_corrupt_and_incompatible_checkpoints(tmp_path):
    recipe, opts = _micro_recipe(aug="noaug")
    good, newer = tmp_path / "checkpoint-000000.008.pt", tmp_path / "checkpoint-000000.016.pt"
    _save(recipe, opts, good, 8)
    _save(recipe, opts, newer, 16)
    data = newer.read_bytes()
    newer.write_bytes(data[: len(data) // 2])                 # a truncated file
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ckpt_lib.load_checkpoint(str(newer))
    assert ckpt_lib.newest_valid_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / "notes.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError):
        ckpt_lib.load_checkpoint(str(tmp_path / "notes.pt"))
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt_lib.load_checkpoint(str(tmp_path / "nope.pt"))
    ckpt = ckpt_lib.load_checkpoint(str(good))
    with pytest.raises(CheckpointError, match="another architecture.*cmax"):
        ckpt_lib.check_compatible(ckpt, "stylegan2", {**recipe.arch_spec(), "cmax": 16})
    with pytest.raises(CheckpointError, match="'fastgan'"):
        ckpt_lib.check_compatible(ckpt, "fastgan", recipe.arch_spec())
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        ckpt_lib.resolve_resume("latest", str(tmp_path / "runs"))


# --- ADA feedback through the loss -----------------------------------------------------------------

class _ToyD(torch.nn.Module):
    """Logits of a fixed sign: +1 models an overfitting D (confident on reals), -1 an underfitting one."""

    def __init__(self, sign):
        super().__init__()
        self.sign = sign
        self.w = torch.nn.Parameter(torch.zeros([]))

    def forward(self, img, c):
        return img.flatten(1).mean(1, keepdim=True) * self.w + self.sign


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ada_p_moves_in_the_right_direction(sign):
    recipe, opts = _micro_recipe(aug="ada")
    recipe.augment.pipe.p.fill_(0.5)
    D = _ToyD(sign)
    loss = StyleGAN2Loss(recipe.G, D, augment_pipe=recipe.augment.pipe, r1_gamma=0,
                         real_sign_hook=recipe.augment.accumulate)
    reals = torch.rand(4, 3, 16, 16) * 2 - 1
    for step in range(8):
        D.requires_grad_(True)
        loss.accumulate_gradients("Dmain", reals, torch.zeros(4, 0), torch.randn(4, 8), torch.zeros(4, 0), 1.0)
        recipe.augment.update(step, opts.batch)
    step_size = opts.batch * opts.ada_interval / (opts.ada_kimg * 1000)
    assert recipe.augment_p == pytest.approx(0.5 + sign * 2 * step_size)


# --- end to end ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_end_to_end_builtin_data_writes_every_artefact(tmp_path):
    _train(MICRO + ["--kimg", "0.016", "--outdir", str(tmp_path), "--aug", "ada", "--ada-kimg", "1"], cwd=tmp_path)
    run = _run_dir(tmp_path)
    files = set(os.listdir(run))
    assert {"options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png", "fakes000000.008.png",
            "fakes000000.016.png", "checkpoint-000000.008.pt", "checkpoint-000000.016.pt"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    opts = json.load(open(os.path.join(run, "options.json")))
    assert (opts["model"], opts["cfg"], opts["resolution"], opts["batch"], opts["device"]) == \
        ("stylegan2", "tiny", [16, 16], 4, "cpu")
    stats = _stats(run)
    assert [s["tick"] for s in stats] == [1, 2] and stats[-1]["kimg"] == pytest.approx(0.016)
    for key in ("loss/G", "loss/D", "augment_p", "sec_per_kimg", "img_per_sec", "scores/real"):
        assert key in stats[-1] and np.isfinite(stats[-1][key]), key
    assert np.isfinite(stats[0]["loss/r1_penalty"])          # R1 runs every 16 steps, from step 0
    grid = np.asarray(Image.open(os.path.join(run, "fakes000000.016.png")))
    assert grid.shape == (8 * 16, 8 * 16, 3) and grid.std() > 0
    log = open(os.path.join(run, "log.txt")).read()
    assert "tick 2" in log and "saved checkpoint-000000.016.pt" in log


@pytest.mark.slow
def test_end_to_end_image_folder_with_resize_and_labels(tmp_path):
    data = tmp_path / "images" / "nested"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)).save(data / f"{i}.png")
        labels.append([f"nested/{i}.png", i % 2])
    (data / "broken.png").write_bytes(b"not an image")
    (tmp_path / "images" / "dataset.json").write_text(json.dumps({"labels": labels}))
    out = tmp_path / "runs"
    proc = _train(MICRO + ["--kimg", "0.008", "--data", str(tmp_path / "images"), "--cond", "--mirror", "--outdir",
                           str(out), "--aug", "noaug", "--resolution", "32x16"], cwd=tmp_path)
    run = _run_dir(out)
    said = proc.stdout + proc.stderr
    assert said.count("skipping 'nested/broken.png'") == 1          # the data is opened (and reported) once
    assert said.count("skipped 1 file(s): 'nested/broken.png' (UnidentifiedImageError") == 1   # and counted
    assert said.count("6 of 6 images are not 32x16 (e.g. 20x24): they are resized on the fly") == 1
    assert said.count("warning: only 6 training images") == 1 and "use --aug ada" in said
    assert "add --mirror" not in said                             # already mirrored
    assert f"done: {run}" in proc.stdout and "fakes000000.008.png (the last grid" in proc.stdout
    for command in ("ganops_models.generate --network", "ganops_models.metrics --network",
                    "ganops_models.train --data", "ganops_models.train --resume"):
        assert command in proc.stdout
    ckpt = ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.008.pt"))
    assert ckpt["data"]["label_dim"] == 2 and ckpt["arch"]["c_dim"] == 2 and ckpt["arch"]["resolution"] == [16, 32]
    assert np.asarray(Image.open(os.path.join(run, "reals.png"))).shape == (8 * 16, 8 * 32, 3)


@pytest.mark.slow
def test_kill_and_resume_latest(tmp_path):
    """SIGKILL a run after its second snapshot, corrupt the newest checkpoint, resume 'latest': training
    continues from the newest valid checkpoint with its kimg, augment p and optimiser state."""
    args = MICRO + ["--outdir", str(tmp_path), "--aug", "ada", "--ada-kimg", "0.1"]
    proc = subprocess.Popen([sys.executable, "-m", "ganops_models.train", *args, "--kimg", "10"], cwd=tmp_path,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            runs = ckpt_lib.run_dirs(str(tmp_path))
            if runs and len(ckpt_lib.list_checkpoints(runs[0])) >= 2:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = _run_dir(tmp_path)
    ckpts = ckpt_lib.list_checkpoints(run)
    assert len(ckpts) >= 2
    newest = ckpts[-1]
    data = open(newest, "rb").read()
    open(newest, "wb").write(data[: len(data) // 3])
    resume_from = ckpt_lib.load_checkpoint(ckpts[-2])
    start = resume_from["progress"]
    p0 = float(resume_from["state"]["augment"]["p"])
    end_nimg = start["cur_nimg"] + 8
    _train(args + ["--resume", "latest", "--kimg", str(end_nimg / 1000)], cwd=tmp_path)
    assert _run_dir(tmp_path) == run                              # the same run continues
    log = open(os.path.join(run, "log.txt")).read()
    assert f"resumed from {ckpts[-2]} at kimg {start['cur_nimg'] / 1000:.3f}, step {start['step']}, " \
           f"augment p {p0}" in log
    final = ckpt_lib.load_checkpoint(os.path.join(run, ckpt_lib.checkpoint_name(end_nimg)))
    steps = end_nimg // 4
    assert final["progress"] == {"cur_nimg": end_nimg, "step": steps, "tick": start["tick"] + 1}
    opt_d = final["state"]["opt_D"]["state"][0]
    opt_g = final["state"]["opt_G"]["state"][0]
    assert float(opt_g["step"]) == steps                         # Gmain every step (tiny: no path length)
    assert float(opt_d["step"]) == steps + len(range(0, steps, 16))   # Dmain every step + Dreg every 16
    assert final["options"]["resume"] == ckpts[-2]


@pytest.mark.slow
def test_resume_with_another_architecture_is_refused(tmp_path):
    recipe, opts = _micro_recipe(aug="noaug")
    path = tmp_path / "checkpoint-000000.008.pt"
    _save(recipe, opts, path)
    proc = _train(["--resume", str(path), "--cmax", "16", "--outdir", str(tmp_path / "runs"), "--device", "cpu",
                   "--workers", "0"], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "another architecture" in proc.stderr and "cmax" in proc.stderr
    assert "tick" not in proc.stdout


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    """--gpus 2 on CPUs: the trainer starts 2 processes with torchrun's environment (gloo); the batch
    is split, replicas stay identical (checked at every snapshot), rank 0 alone writes the run
    directory."""
    proc = _train(MICRO + ["--gpus", "2", "--kimg", "0.016", "--outdir", str(tmp_path), "--aug", "ada"], cwd=tmp_path)
    run = _run_dir(tmp_path)
    assert json.load(open(os.path.join(run, "options.json")))["world_size"] == 2
    stats = _stats(run)
    assert stats[-1]["kimg"] == pytest.approx(0.016) and len(stats) == 2
    ckpt = ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.016.pt"))
    assert ckpt["progress"]["step"] == 4
    assert proc.stdout.count("saved checkpoint-000000.016.pt") == 1      # one writer


# --- the whole training step on the fast backends --------------------------------------------------

def _phase_gradients(impl, device, phase, monkeypatch):
    """Loss stats and parameter gradients of one training phase with every op forced to ``impl`` (a
    fresh micro recipe, so every run starts from the same weights and regulariser state, and the same
    seed, so it draws the same latents, noise and augmentations)."""
    monkeypatch.setenv("GANOPS_IMPL", impl)
    opts = StyleGAN2Options(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                        device=device, aug="fixed", p=0.5, r1_interval=2, pl_interval=2, mbstd_group=2,
                        conv_clamp=None)
    recipe = StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device(device), DistInfo())
    torch.manual_seed(5)
    reals = torch.rand(4, 3, 16, 16, device=device) * 2 - 1
    labels = torch.zeros(4, 0, device=device)
    z = torch.randn(4, 8, device=device)
    module = recipe.D if phase.startswith("D") else recipe.G
    module.requires_grad_(True)
    stats = recipe.loss.accumulate_gradients(phase, reals, labels, z, labels, gain=1)
    return stats, {name: p.grad for name, p in module.named_parameters() if p.grad is not None}


@pytest.fixture
def no_tf32():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.mark.parametrize("backend", [c for c in backend_cases() if c.values[0] == ("cuda", "cpu")
                                     or c.values[0][1] == "cuda"])
@pytest.mark.parametrize("phase", ["Gmain", "Greg", "Dmain", "Dreg"])
def test_training_phases_match_reference_backend(backend, phase, monkeypatch, no_tf32):
    """G main, path length, D main and R1 (through ADA's geometric and filter augmentations): the same
    losses and the same gradient on the fast backend as on the reference. The gradient is compared as
    one vector over all parameters: a few of its entries (the bias of a block at 8x8) change by percents
    when the reals change by 1e-7, because a leaky ReLU under R1 flips its slope, so per-tensor
    comparisons would test that sensitivity rather than the backend."""
    impl, device = backend
    stats, grads = _phase_gradients(impl, device, phase, monkeypatch)
    stats_ref, grads_ref = _phase_gradients("ref", device, phase, monkeypatch)
    assert set(stats) == set(stats_ref) and set(grads) == set(grads_ref)
    for name in stats_ref:
        assert_close(stats[name], stats_ref[name].double(), torch.float32, name, factor=20)
    names = sorted(grads_ref)
    ref = torch.cat([grads_ref[n].double().flatten() for n in names])
    assert ref.abs().max() > 0
    assert_close(torch.cat([grads[n].flatten() for n in names]), ref, torch.float32, "gradient", factor=20)


# --- GPU (skipped without one) ---------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_gpu_training_steps_mixed_precision(precision):
    """Every phase on the GPU with the low-precision highest-resolution blocks (channels_last), in
    rounds of 4."""
    opts = StyleGAN2Options(batch=8, batch_gpu=4, cbase=1024, cmax=64, z_dim=32, w_dim=32, map=2, num_fp16_res=2,
                        precision=precision, device="cuda", aug="ada", p=0.2, mbstd_group=4, nhwc=True)
    torch.manual_seed(0)
    recipe = StyleGAN2Recipe(opts, DataInfo((32, 32)), torch.device("cuda"), DistInfo())
    reals = torch.rand(8, 3, 32, 32, device="cuda") * 2 - 1
    labels = torch.zeros(8, 0, device="cuda")
    for step in range(2):
        stats = recipe.train_step(reals, labels, step * 16, step * 8)
        for name, value in stats.items():
            assert torch.isfinite(value).all(), (name, value)
    assert {"loss/G", "loss/D", "loss/r1_penalty", "loss/pl_penalty"} <= set(stats)
    for p in list(recipe.G.parameters()) + list(recipe.D.parameters()):
        assert torch.isfinite(p).all()
    images = recipe.sample(torch.randn(4, 32), None)
    assert images.shape == (4, 3, 32, 32) and torch.isfinite(images).all()


@gpu
@pytest.mark.slow
def test_gpu_end_to_end(tmp_path):
    """The 'auto' preset (fp16 in the 4 highest resolutions, conv_clamp 256) shrunk to 32 px."""
    _train(["--cfg", "auto", "--resolution", "32", "--cbase", "2048", "--cmax", "128", "--batch", "8", "--kimg",
            "0.032", "--tick", "0.016", "--snap", "1", "--workers", "1", "--device", "cuda", "--outdir",
            str(tmp_path)], cwd=tmp_path)
    run = _run_dir(tmp_path)
    stats = _stats(run)
    assert stats[-1]["kimg"] == pytest.approx(0.032) and "gpu_mem_gb" in stats[-1]
    assert len(ckpt_lib.list_checkpoints(run)) == 2
