"""The trainer's command line: NVIDIA's train.py flags and syntax, options reaching the recipe,
backend flags, --dry-run, --subset, --gpus, and the divergence guard on an injected NaN."""
import json
import math
import os

import pytest
import torch

from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.tools import train
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.errors import DivergenceError
from ganops_models.training import guard, launcher
from ganops_models.training.distributed import DistInfo
from ganops_models.training.loop import open_training_data, set_backend_flags, training_loop
from ganops_models.tools.train import new_run_options
from ganops_models.training.options import TrainOptions
from ganops_models.models.registry import get_recipe
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe

CPU = torch.device("cpu")
MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "1", "--workers", "0", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _prepare(argv, tmp_path, world_size=1):
    args = train.build_parser().parse_args(argv + ["--outdir", str(tmp_path / "runs")])
    resolved, _, dataset, _, _ = train.prepare(args, DistInfo(world_size=world_size), CPU)
    opts = resolved.options
    return opts, dataset


def test_nvidia_flags_reach_the_recipe(tmp_path):
    opts, dataset = _prepare(MICRO + [
        "--batch", "8", "--batch-gpu", "2", "--glr", "0.001", "--dlr", "0.003", "--map-depth", "3",
        "--mbstd-group", "2", "--cbase", "128", "--cmax", "16", "--pl-weight", "1.5", "--style-mixing", "0.25",
        "--r1-interval", "8", "--pl-interval", "2", "--ema-kimg", "0.5", "--ema-rampup", "none", "--nhwc=1",
        "--allow-tf32", "true", "--nobench=yes", "--subset", "5", "--mirror=1", "--nan-policy", "rollback",
        "--precision", "bf16"], tmp_path)
    assert (opts.batch, opts.batch_gpu, opts.glr, opts.dlr, opts.map, opts.mbstd_group, opts.cbase, opts.cmax,
            opts.pl_weight, opts.style_mixing, opts.r1_interval, opts.pl_interval, opts.ema, opts.ema_rampup,
            opts.nhwc, opts.allow_tf32, opts.nobench, opts.subset, opts.mirror, opts.nan_policy, opts.conv_clamp) == \
        (8, 2, 0.001, 0.003, 3, 2, 128, 16, 1.5, 0.25, 8, 2, 0.5, None, True, True, True, 5, True, "rollback", 256)
    assert len(dataset[0]) == 10                                  # the first 5 images, and their mirrors
    recipe = StyleGAN2Recipe(StyleGAN2Options.from_dict({**opts.to_dict(), "num_fp16_res": 1}), dataset[1], CPU,
                             DistInfo())
    assert recipe.round_size == 2 and recipe.batch_per_process == 8           # per round, per process
    assert recipe.loss.pl_weight == 1.5 and recipe.loss.style_mixing_prob == 0.25
    assert [(name, interval) for name, _, _, interval in recipe.phases] == \
        [("Gmain", 1), ("Greg", 2), ("Dmain", 1), ("Dreg", 8)]
    assert recipe.opt_G.param_groups[0]["lr"] == pytest.approx(0.001 * 2 / 3)
    assert recipe.opt_D.param_groups[0]["lr"] == pytest.approx(0.003 * 8 / 9)
    assert len(recipe.G.mapping.layers) == 3
    assert recipe.D.b4.mbstd.group_size == 2
    blocks = recipe.G.synthesis.blocks
    assert [b.channels_last for b in blocks] == [False, False, True]          # --nhwc: the bf16 block only
    assert max(b.conv1.weight.shape[0] for b in blocks) == 16                   # --cmax


def test_boolean_syntax_and_fp32(tmp_path):
    parse = train.build_parser().parse_args
    for argv, expect in ((["--mirror"], True), (["--mirror=1"], True), (["--mirror=0"], False),
                         (["--mirror", "false"], False), (["--mirror=True"], True), ([], None)):
        assert parse(argv).mirror is expect, argv
    with pytest.raises(SystemExit):
        parse(["--mirror=maybe"])
    opts, _ = _prepare(MICRO + ["--fp32"], tmp_path)
    assert opts.precision == "fp32" and opts.conv_clamp is None
    opts, _ = _prepare(MICRO + ["--precision", "fp32"], tmp_path)
    assert opts.conv_clamp is None
    opts, _ = _prepare(MICRO + ["--fp32=0", "--precision", "fp16"], tmp_path)
    assert opts.precision == "fp16" and opts.conv_clamp == 256


def test_batch_gpu_defaults_follow_nvidia(tmp_path):
    assert [new_run_options({"cfg": cfg}, (256, 256), 1).options.batch_gpu for cfg in
            ("stylegan2", "paper256", "paper512", "paper1024", "cifar", "auto")] == [4, 8, 8, 4, 32, 16]
    auto = new_run_options({"cfg": "auto"}, (512, 512), 2).options
    assert (auto.batch, auto.batch_gpu) == (16, 8)                          # auto: one round per process
    assert new_run_options({"cfg": "cifar"}, (32, 32), 4).options.batch_gpu == 16           # capped at the process's batch
    assert new_run_options({"cfg": "paper256", "batch": 32}, (256, 256), 2).options.batch_gpu == 16   # --batch: one round
    assert new_run_options({"cfg": "paper256", "batch": 32, "batch_gpu": 4}, (256, 256), 2).options.batch_gpu == 4
    with pytest.raises(train.OptionsError, match="--batch-gpu 3 must divide the batch of each process"):
        new_run_options({"cfg": "paper256", "batch_gpu": 3}, (256, 256), 1).options


@pytest.mark.parametrize("argv, message", [
    (["--fp32", "--precision", "fp16"], "--fp32 conflicts with --precision fp16"),
    (["--subset", "0"], "--subset must be a positive"),
    (["--gpus", "4096", "--device", "cuda"], "torchrun --nnodes="),
    # MICRO's --cbase and --cmax too: FastGAN has neither (before per-model options they were silently ignored)
    (["--cfg", "fastgan-lite", "--batch-gpu", "2", "--nhwc"], "--batch-gpu, --cbase, --cmax, --nhwc (command line): "
                                                                "--model fastgan does not have these options"),
])
def test_flag_errors(argv, message, tmp_path, capsys):
    assert train.main(MICRO[:-2] + argv + ["--outdir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_dry_run_prints_the_resolved_options_and_exits(tmp_path, capsys):
    for flag in ("--dry-run", "-n"):
        assert train.main(MICRO + [flag, "--batch-gpu", "2", "--outdir", str(tmp_path / "runs")]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert (printed["cfg"], printed["batch"], printed["batch_gpu"], printed["resolution"]) == ("tiny", 4, 2, [16, 16])
        sources = printed["sources"]
        assert (sources["cfg"], sources["batch_gpu"], sources["cbase"], sources["seed"], sources["precision"]) == (
            "command line", "command line", "command line", "default", "derived: the default for cpu")
        assert sources["z_dim"] == "preset tiny" and sources["device"] == "command line"
        assert printed["run_dir"].startswith(str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_help_lists_every_nvidia_flag_with_its_default():
    text = train.build_parser().format_help()
    for flag in ("--batch-gpu", "--glr", "--dlr", "--map-depth", "--mbstd-group", "--cbase", "--cmax", "--allow-tf32",
                 "--nhwc", "--nobench", "--dry-run", "--subset", "--pl-weight", "--style-mixing", "--r1-interval",
                 "--pl-interval", "--ema-kimg", "--ema-rampup", "--fp32", "--gpus", "--nan-policy", "--mirror"):
        assert flag in text, flag
    for line in ("--allow-tf32 [BOOL]", "(default: false)", "(default: stop)", "(default: all)"):
        assert line in " ".join(text.split()), line


@pytest.mark.parametrize("allow_tf32, nobench", [(False, False), (True, True)])
def test_backend_flags_follow_the_options(allow_tf32, nobench, backend_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not allow_tf32
    torch.backends.cudnn.benchmark = nobench
    set_backend_flags(TrainOptions(allow_tf32=allow_tf32, nobench=nobench))
    assert torch.backends.cuda.matmul.allow_tf32 is allow_tf32 and torch.backends.cudnn.allow_tf32 is allow_tf32
    assert torch.backends.cudnn.benchmark is (not nobench)


# --- the divergence guard -------------------------------------------------------------------------

def _poison_calls(monkeypatch, calls):
    """NaN reals in the given (1-based) calls of train_step: D's losses and gradients turn NaN."""
    original, count = StyleGAN2Recipe.train_step, [0]

    def poisoned(self, reals, labels, step, cur_nimg):
        count[0] += 1
        return original(self, reals * math.nan if count[0] in calls else reals, labels, step, cur_nimg)
    monkeypatch.setattr(StyleGAN2Recipe, "train_step", poisoned)


def _guard_run(tmp_path, nan_policy):
    opts = new_run_options({"cfg": "tiny", "resolution": "16", "cbase": 64, "cmax": 8, "batch": 4, "tick": 0.008, "snap": 1,
                    "workers": 0, "device": "cpu", "kimg": 0.024, "aug": "noaug", "nan_policy": nan_policy,
                    "grid": (2, 2), "outdir": str(tmp_path)}, (16, 16), 1).options
    run_dir = str(tmp_path / "00000-guard")
    return opts, run_dir, lambda: training_loop(opts, get_recipe(opts.model), run_dir, DistInfo(), CPU, dataset=open_training_data(opts))


def test_divergence_stops_the_run_and_names_the_last_good_checkpoint(tmp_path, monkeypatch, capsys, backend_flags):
    _poison_calls(monkeypatch, {5})                               # tick 3 = steps 5 and 6
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    assert train.main(MICRO + ["--kimg", "0.024", "--aug", "noaug", "--outdir", str(tmp_path)]) == 3
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32   # set by the run
    run_dir, = ckpt_lib.run_dirs(str(tmp_path))
    good = os.path.join(run_dir, ckpt_lib.checkpoint_name(16))
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: training diverged at tick 3 (kimg 0.024)")
    assert f"Last good checkpoint: {good}" in message
    assert "loss/D = nan" in message and "non-finite gradients" in message
    assert [os.path.basename(p) for p in ckpt_lib.list_checkpoints(run_dir)] == \
        [ckpt_lib.checkpoint_name(8), ckpt_lib.checkpoint_name(16)]
    assert message[len("error: "):] in open(os.path.join(run_dir, "log.txt")).read()


def test_divergence_rolls_back_with_lower_learning_rates(tmp_path, monkeypatch):
    _poison_calls(monkeypatch, {5})
    opts, run_dir, run = _guard_run(tmp_path, "rollback")
    assert run()["cur_nimg"] == 24
    log = open(os.path.join(run_dir, "log.txt")).read()
    assert "training diverged at tick 3" in log and "rolled back to it with every learning rate x0.5" in log
    final = ckpt_lib.load_checkpoint(os.path.join(run_dir, ckpt_lib.checkpoint_name(24)))
    assert final["progress"] == {"cur_nimg": 24, "step": 6, "tick": 3}
    assert final["state"]["opt_G"]["param_groups"][0]["lr"] == pytest.approx(opts.glr / 2)   # tiny: no path length, c = 1
    assert final["state"]["opt_D"]["param_groups"][0]["lr"] == pytest.approx(opts.dlr * 16 / 17 / 2)
    for net in ("G", "D", "G_ema"):
        assert all(torch.isfinite(t).all() for t in final["state"][net].values() if t.is_floating_point())


def test_divergence_before_any_checkpoint_has_nothing_to_roll_back_to(tmp_path, monkeypatch):
    _poison_calls(monkeypatch, {1})
    _, run_dir, run = _guard_run(tmp_path, "rollback")
    with pytest.raises(DivergenceError, match=r"tick 1 .*Last good checkpoint: none .*no checkpoint to roll"):
        run()
    assert ckpt_lib.list_checkpoints(run_dir) == []


def test_occasional_nonfinite_gradients_are_tolerated_like_nvidia():
    """A rare fp16 overflow (nan_to_num'd) does not stop a run; frequent ones or ones beside a NaN loss do."""
    healthy = {"D": torch.nn.Linear(2, 2)}
    assert guard.tick_problems({"loss/D": 0.5, guard.GRAD_STAT: 0.1}, healthy) == []
    assert "non-finite gradients" in guard.tick_problems({"loss/D": 0.5, guard.GRAD_STAT: 0.75}, healthy)[-1]
    problems = guard.tick_problems({"loss/D": math.nan, guard.GRAD_STAT: 0.1}, healthy)
    assert problems[0] == "loss/D = nan" and "non-finite gradients" in problems[-1]
    broken = torch.nn.Linear(2, 2)
    with torch.no_grad():
        broken.weight[0, 0] = math.inf
    assert guard.tick_problems({"loss/D": 0.5}, {"D": broken}) == ["non-finite parameters in D"]


# --- --gpus under torchrun ---------------------------------------------------------------------------

def test_gpus_under_torchrun_must_match_its_world_size(monkeypatch):
    """(--gpus starting its own processes is tested end to end in test_training.py.)"""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not launcher.should_launch(2)
    with pytest.raises(train.OptionsError, match="--gpus 3 but this process is one of 2 started by torchrun"):
        launcher.check_gpus(3, "cpu", MICRO, DistInfo(rank=0, world_size=2))
    launcher.check_gpus(2, "cpu", MICRO, DistInfo(rank=0, world_size=2))
    monkeypatch.delenv("WORLD_SIZE")
    assert launcher.should_launch(2) and not launcher.should_launch(1) and not launcher.should_launch(None)
