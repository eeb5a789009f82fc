"""--compile compiles every phase of a training step (issue #33 item 2): a few steps with compiled
phases give the losses and parameters of eager steps with the same seeds (random ops inside the
compiled graphs draw from the eager generator: ``step_compile.eager_random``), the regularisation
phases (R1, path length, WGAN-GP) included, with no graph break inside a StyleGAN2 phase.

Most cases use the ``aot_eager`` backend (the graphs Dynamo and AOTAutograd trace, without
inductor's C++ build, which takes minutes on 2 cores); one runs the real ``--compile`` path of the
trainer's CLI end to end with inductor."""
import pytest
import torch

from ganops_models.models.registry import get_recipe
from ganops_models.tools.train import new_run_options
from ganops_models.training import step_compile
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from test_sync_free import count_host_syncs

# (preset, extra options, resolution, steps): every phase runs at step 0 and is checked again after an
# update. StyleGAN2 with --aug ada passes too (ADA traced into the D phases) but takes twice as long to trace.
CASES = {
    "stylegan2": ("tiny", {"aug": "noaug", "pl_weight": 2.0, "pl_interval": 2, "r1_interval": 2, "batch_gpu": 2,
                           "cbase": 64, "cmax": 8}, 16, 2),
    "progan-wgan-gp": ("progan-lite", {}, 16, 2),
}


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setenv(step_compile.BACKEND_ENV, "aot_eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _recipe(cfg: str, extra: dict, res: int):
    opts = new_run_options({"cfg": cfg, "resolution": str(res), "batch": 4, **extra}, (res, res), 1, "cpu").options
    return get_recipe(opts.model)(opts, DataInfo((res, res)), torch.device("cpu"), DistInfo())


def _train(recipe, steps: int, res: int):
    torch.manual_seed(1)
    reals = torch.rand(4, 3, res, res) * 2 - 1
    labels = torch.zeros(4, 0)
    out = []
    for step in range(steps):
        stats = recipe.train_step(reals, labels, step, step * 4)
        out.append({k: float(v) for k, v in stats.items()})
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_steps_match_eager(case, aot_eager):
    cfg, extra, res, steps = CASES[case]
    eager = _recipe(cfg, extra, res)
    compiled = _recipe(cfg, extra, res)
    compiled.compile()
    with step_compile.eager_random():
        want, got = _train(eager, steps, res), _train(compiled, steps, res)
    assert [sorted(s) for s in got] == [sorted(s) for s in want]
    if cfg == "tiny":
        assert {"loss/r1_penalty", "loss/pl_penalty"} <= set().union(*want)
    for s_want, s_got in zip(want, got):
        for name in s_want:
            assert s_got[name] == pytest.approx(s_want[name], rel=1e-4, abs=1e-5), name
    for name, module in eager.modules().items():
        state = compiled.modules()[name].state_dict()
        assert list(state) == list(module.state_dict())          # no _orig_mod. prefixes
        for (key, a), b in zip(module.state_dict().items(), state.values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    reals, labels = torch.rand(4, 3, res, res) * 2 - 1, torch.zeros(4, 0)
    assert count_host_syncs(lambda: compiled.train_step(reals, labels, steps, steps * 4)) == {}


def test_train_cli_compile_end_to_end_and_resume_eager(tmp_path):
    """``--compile`` through the trainer with inductor (DCGAN: the smallest graphs); the checkpoint has the
    eager parameter names and an eager run resumes from it."""
    from ganops_models.formats.checkpoint import load_checkpoint
    from ganops_models.tools.train import main

    common = ["--model", "dcgan", "--cfg", "dcgan-lite", "--outdir", str(tmp_path), "--tick", "0.008", "--snap", "1",
              "--batch", "4", "--ngf", "8", "--ndf", "8", "--workers", "0", "--device", "cpu"]
    torch._dynamo.reset()
    assert main(common + ["--kimg", "0.008", "--compile"]) == 0
    torch._dynamo.reset()
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    state = load_checkpoint(str(run / "checkpoint-000000.008.pt"))["state"]
    assert not [k for part in ("G", "D", "G_ema") for k in state[part] if "_orig_mod" in k]
    assert main(common + ["--kimg", "0.012", "--resume", "latest"]) == 0
    assert load_checkpoint(str(run / "checkpoint-000000.012.pt"))["progress"]["step"] == 3
