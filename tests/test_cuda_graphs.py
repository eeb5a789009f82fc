"""``--cuda-graphs`` (issue #33 item 3): refused with a clear message where it cannot run; the state a
captured step mutates is updated in place (CPU); on a GPU, captured phases train like eager ones,
replay without host syncs and capture again after a resume."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ganops_models.augment import AugmentPipe
from ganops_models.augment.ada_controller import AdaController
from ganops_models.errors import OptionsError
from ganops_models.models.registry import get_recipe
from ganops_models.tools import train
from ganops_models.tools.train import new_run_options
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo, adam
from helpers import HAS_GPU, count_host_syncs, gpu

MICRO = ["--resolution", "16", "--batch", "4", "--kimg", "0.008", "--workers", "0"]
SMALL = {"cfg": "tiny", "resolution": "16", "cbase": 64, "cmax": 8, "batch": 4}

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--cfg", "tiny", "--cbase", "64", "--cmax", "8", "--device", "cpu"],
     "--cuda-graphs captures the training step in CUDA graphs and needs a CUDA GPU (--device cuda); this run is on cpu"),
    (["--device", "cpu", "--cfg", "fastgan-lite"], "--cuda-graphs is supported by --model stylegan2 and stylegan3 "
                                                   "only, not --model fastgan"),
])
def test_cli_refuses_cuda_graphs(argv, message, tmp_path, capsys):
    assert train.main(MICRO + argv + ["--cuda-graphs", "--outdir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and "leave out --cuda-graphs" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(HAS_GPU, reason="checks the message of a machine without a CUDA GPU")
def test_cli_refuses_cuda_device_without_a_gpu(tmp_path, capsys):
    argv = MICRO + ["--cfg", "tiny", "--device", "cuda", "--cuda-graphs", "--outdir", str(tmp_path / "runs")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU is available" in err and "Traceback" not in err


@pytest.mark.parametrize("extra, world_size, message", [
    ({}, 2, "this run has 2 processes (--gpus / torchrun)"),
    ({"compile": True}, 1, "--cuda-graphs and --compile cannot be combined"),
    ({"cfg": "dcgan-lite", "cbase": None, "cmax": None}, 1, "not --model dcgan"),
])
def test_options_refuse_unsupported_combinations(extra, world_size, message):
    values = {k: v for k, v in {**SMALL, **extra, "cuda_graphs": True}.items() if v is not None}
    with pytest.raises(OptionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        new_run_options(values, (16, 16), world_size, "cuda")


def test_stylegan3_options_accept_cuda_graphs_where_a_gpu_is():
    resolved = lambda: new_run_options({"cfg": "stylegan3-t", "cuda_graphs": True}, (16, 16), 1, "cuda")  # noqa: E731
    if HAS_GPU:
        assert resolved().options.cuda_graphs
    else:
        with pytest.raises(OptionsError, match="no CUDA GPU is visible"):
            resolved()


# --- state updated in place (what a captured kernel keeps writing to) -------------------------------------

def _recipe(device="cpu", **extra):
    opts = new_run_options({**SMALL, **extra}, (16, 16), 1, device).options
    torch.manual_seed(0)
    return get_recipe(opts.model)(opts, DataInfo((16, 16)), torch.device(device), DistInfo())


def test_pl_mean_guard_counter_and_ada_buffer_stay_the_same_tensors():
    recipe = _recipe(aug="ada", p=0.2, ada_interval=1, pl_weight=2.0, gamma=1.0, pl_interval=2, r1_interval=2)
    pl_mean, guard = recipe.loss.pl_mean, recipe.nonfinite_grad_steps
    reals, labels = torch.rand(4, 3, 16, 16) * 2 - 1, torch.zeros(4, 0)
    recipe.train_step(reals, labels, 0, 0)
    acc = recipe.augment.controller._acc
    values = []
    for step in range(1, 5):
        stats = recipe.train_step(reals, labels, step, 4 * step)
        values.append(float(recipe.loss.pl_mean))
        assert "pl_mean" not in stats or float(stats["pl_mean"]) == values[-1]
        recipe.take_nonfinite_grad_steps()
    assert recipe.loss.pl_mean is pl_mean and recipe.nonfinite_grad_steps is guard
    assert recipe.augment.controller._acc is acc
    assert values[-1] > 0 and len(set(values)) > 1, "pl_mean must move"
    other = _recipe(aug="ada", p=0.2, ada_interval=1, pl_weight=2.0, gamma=1.0, pl_interval=2, r1_interval=2)
    other.train_step(reals, labels, 0, 0)
    other_pl_mean, other_acc = other.loss.pl_mean, other.augment.controller._acc
    other.load_state_dict(recipe.state_dict())
    assert other.loss.pl_mean is other_pl_mean and float(other_pl_mean) == values[-1]
    assert other.augment.controller._acc is other_acc
    assert other.augment.controller.state_dict() == recipe.augment.controller.state_dict()


def test_ada_buffer_counts_like_before_and_a_replayed_accumulate_is_noted():
    pipe = AugmentPipe("bgc", p=0.0)
    ctl = AdaController(target=0.6, ada_kimg=1, batch_size=10, interval=1)
    ctl.accumulate(torch.ones(6))
    ctl.accumulate(-torch.ones(2))
    buffer = ctl._acc
    assert buffer.tolist() == [4.0, 8.0] and ctl.state_dict()["count"] == 8
    assert ctl.update(pipe) and ctl.rt == 0.5 and float(pipe.p) == 0
    assert buffer.tolist() == [0.0, 0.0] and not ctl.update(pipe), "nothing accumulated since the adjustment"
    buffer.add_(torch.tensor([3.0, 3.0], dtype=torch.float64))      # what a replayed graph does on the device
    assert not ctl.update(pipe), "without the host's note the replayed signs wait"
    ctl.note_accumulated()
    assert ctl.update(pipe) and ctl.rt == 1.0 and float(pipe.p) == pytest.approx(0.01)
    ctl.accumulate(torch.ones(5))
    restored = AdaController()
    restored.accumulate(torch.ones(1))
    kept = restored._acc
    restored.load_state_dict(ctl.state_dict())
    assert restored._acc is kept and restored.state_dict() == ctl.state_dict()


class HostBuiltTensors(TorchDispatchMode):
    """Counts tensors made from host data (``torch.tensor``, ``as_tensor``): a copy to a GPU each time,
    which a CUDA graph capture refuses."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += str(func.overloadpacket) == "aten.lift_fresh"
        return func(*args, **(kwargs or {}))


def test_ada_pipeline_builds_no_host_tensors_after_its_first_call():
    pipe = AugmentPipe("bgcfnc", p=0.5)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    pipe(x)
    mode = HostBuiltTensors()
    with mode:
        pipe(x)
    assert mode.count == 0


def test_stylegan3_blur_filter_is_refilled_in_place_while_its_size_holds():
    recipe = _recipe(cfg="stylegan3-r", cbase=128, cmax=4, aug="noaug")
    loss = recipe.loss
    fade_nimg = loss.blur_fade_kimg * 1000
    loss.set_progress(int(0.45 * fade_nimg))    # sigma 5.5: 2 * floor(3 sigma) + 1 = 33 taps
    taps, sigma, values = loss.blur_taps, loss.blur_sigma, loss.blur_taps.clone()
    loss.set_progress(int(0.45 * fade_nimg) + 4)   # a hair smaller: same size, other values, same tensor
    assert loss.blur_taps is taps and loss.blur_sigma < sigma and not torch.equal(taps, values)
    key = recipe.graph_key("Dmain")
    loss.set_progress(int(0.9 * fade_nimg))
    assert loss.blur_taps.numel() < taps.numel() and recipe.graph_key("Dmain") != key


def test_adam_is_capturable_on_request():
    p = torch.nn.Parameter(torch.zeros(3))
    assert adam([p], lr=0.1, capturable=True).param_groups[0]["capturable"]
    assert not adam([p], lr=0.1).param_groups[0]["capturable"]


# --- on a GPU ----------------------------------------------------------------------------------------

@gpu
def test_phase_graphs_replay_a_deterministic_step_exactly():
    """The machinery alone, on a step without random numbers: warm-up, capture, replays with new inputs and
    the optimiser step give the eager results (float32, 1e-6)."""
    from ganops_models.training.cuda_graphs import PhaseGraphs
    torch.manual_seed(0)
    nets = [torch.nn.Linear(8, 1).cuda() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [adam(net.parameters(), lr=1e-2, capturable=True) for net in nets]
    graphs = PhaseGraphs()

    def step(net, opt, x):
        opt.zero_grad(set_to_none=True)
        loss = net(x).square().mean()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    for i in range(6):
        x = torch.randn(16, 8, device="cuda")
        eager = step(nets[0], opts[0], x)
        graphed = graphs.run("step", lambda x: step(nets[1], opts[1], x), x)
        torch.testing.assert_close(graphed["loss"], eager["loss"], rtol=1e-6, atol=1e-6)
    assert graphs.captures == 1
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@gpu
def test_stylegan2_with_cuda_graphs_trains_like_eager_and_resumes():
    """Tiny StyleGAN2, R1 and path length every 2nd step, ADA adapting every step: 12 steps eager and with
    --cuda-graphs from the same seed. Random numbers inside a replayed graph need not be the eager ones,
    so the check is statistical: finite losses, each network moved from its start by 0.5-2x the eager
    distance. A replayed step reads the host zero times; a resumed recipe captures again and trains."""
    extra = dict(precision="fp32", aug="ada", p=0.2, ada_interval=1, pl_weight=2.0, gamma=1.0, pl_interval=2,
                 r1_interval=2)
    eager, graphed = _recipe("cuda", **extra), _recipe("cuda", cuda_graphs=True, **extra)
    start = {name: [p.detach().clone() for p in getattr(eager, name).parameters()] for name in ("G", "D")}
    torch.manual_seed(1)
    batches = [torch.rand(4, 3, 16, 16, device="cuda") * 2 - 1 for _ in range(16)]
    labels = torch.zeros(4, 0, device="cuda")
    for recipe in (eager, graphed):
        for step in range(12):
            stats = recipe.train_step(batches[step], labels, step, 4 * step)
            assert all(torch.isfinite(v).all() for v in stats.values()), (step, stats)
    assert graphed.graphs.captures == 4, "Gmain, Greg, Dmain and Dreg each captured once"
    for name, init in start.items():
        def moved(recipe):
            params = getattr(recipe, name).parameters()
            return sum((p.detach() - p0).square().sum() for p, p0 in zip(params, init)).sqrt()
        ratio = float(moved(graphed) / moved(eager))
        assert 0.5 < ratio < 2, f"{name} moved {ratio:.2f}x the eager distance"
    assert graphed.augment_p != 0.2, "ADA adjusted p from the replayed signs"
    assert count_host_syncs(lambda: graphed.train_step(batches[12], labels, 12, 48)) == {}

    resumed = _recipe("cuda", cuda_graphs=True, **extra)
    resumed.load_state_dict(graphed.state_dict())
    before = [p.detach().clone() for p in resumed.G.parameters()]
    for step in range(13, 16):                 # 2 warm-up runs of Gmain/Dmain, then capture and replay
        resumed.train_step(batches[step], labels, step, 4 * step)
    assert resumed.graphs.captures == 2
    assert count_host_syncs(lambda: resumed.train_step(batches[15], labels, 17, 68)) == {}
    assert any(not torch.equal(a, b) for a, b in zip(before, resumed.G.parameters()))
    assert all(torch.isfinite(p).all() for p in resumed.G.parameters())
