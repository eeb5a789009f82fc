"""torchrun at any scale (issue #33, item 4): threads per launched process, data workers that fork,
``--resume latest`` decided by rank 0 alone, and two "nodes" on localhost (two torchrun processes,
one c10d rendezvous) training exactly as one machine with ``--gpus 2``."""
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import types

import pytest
import torch
import torch.distributed as dist

from ganops_models.data import make_loader
from ganops_models.data.loader import worker_start_method
from ganops_models.errors import CheckpointError, DatasetError
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe
from ganops_models.tools import train
from ganops_models.training import distributed, launcher, loop
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 16x16, <= 8 channels, 2 steps of 4 images (2 per process) per tick; one snapshot, at the end.
MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "100", "--workers", "0", "--device", "cpu", "--kimg", "0.016"]


# --- threads per process ---------------------------------------------------------------------------

def test_threads_per_process_shares_the_cores_or_keeps_the_users_setting(monkeypatch):
    monkeypatch.setattr(launcher, "usable_cores", lambda: 8)
    assert launcher.threads_per_process(2, {}) == 4
    assert launcher.threads_per_process(3, {}) == 2
    assert launcher.threads_per_process(16, {}) == 1                    # never 0
    assert launcher.threads_per_process(2, {"OMP_NUM_THREADS": "3"}) == 3   # the user's choice wins
    for unusable in ("", "0", "two", "-1"):
        assert launcher.threads_per_process(2, {"OMP_NUM_THREADS": unusable}) == 4


def _record_threads(argv):
    _record_threads.seen = (argv, torch.get_num_threads(), os.environ["OMP_NUM_THREADS"], os.environ["RANK"])
    return 0


def test_a_launched_process_runs_with_its_thread_count(monkeypatch):
    """What ``--gpus N`` runs in each process before the trainer: torchrun's environment and the thread
    count given (torch's intra-op threads and OMP_NUM_THREADS for anything it starts)."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "unset")      # restored after the test
    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 2
    try:
        launcher._process_main(1, _record_threads, ["--x"], 2, 12345, wanted)
        assert _record_threads.seen == (["--x"], wanted, str(wanted), "1")
    finally:
        torch.set_num_threads(before)


# --- data workers ------------------------------------------------------------------------------------

class _Unpicklable(torch.utils.data.Dataset):
    """A dataset that cannot be pickled: only a worker that forks (a copy of this process) can use it."""

    def __init__(self):
        self.local = lambda i: i    # a lambda: pickling fails

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.full((3, 2, 2), self.local(i), dtype=torch.uint8), torch.zeros(0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
def test_loader_workers_fork_even_where_processes_spawn_by_default():
    """A process started by torch.multiprocessing.spawn (each ``--gpus N`` process) spawns its own
    children by default, which re-imports torch in every data worker; the loader forks them anyway."""
    assert worker_start_method() == "fork"
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    try:
        images, _ = next(make_loader(_Unpicklable(), batch_size=4, workers=1, seed=0))
    finally:
        multiprocessing.set_start_method(previous, force=True)
    assert images.shape == (4, 3, 2, 2) and len(set(images[:, 0, 0, 0].tolist())) == 4


# --- --resume latest: rank 0 decides -----------------------------------------------------------------

def _checkpoint(path, nimg):
    opts = StyleGAN2Options(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                            device="cpu", aug="noaug", mbstd_group=2)
    recipe = StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ckpt_lib.save_checkpoint(str(path), model="stylegan2", arch=recipe.arch_spec(), options=opts.to_dict(),
                             data={"resolution": [16, 16], "num_channels": 3, "label_dim": 0, "name": "t"},
                             progress={"cur_nimg": nimg, "step": nimg // 4, "tick": 1}, state=recipe.state_dict())


def _as_rank(rank, store, work, results):
    """One of two gloo processes (forked from this one): ``work(rank)``'s result, or ("error", the
    exception's class, its message)."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        try:
            answer = work(rank)
        except Exception as e:
            answer = ("error", type(e).__name__, str(e))
        with open(os.path.join(results, f"rank{rank}.json"), "w") as f:
            json.dump(answer, f)
    finally:
        dist.destroy_process_group()


def _on_two_ranks(tmp_path, name, work):
    """[rank 0's answer, rank 1's answer] of ``work(rank)`` run by two gloo ranks."""
    results = tmp_path / name
    results.mkdir()
    torch.multiprocessing.start_processes(_as_rank, args=(str(tmp_path / f"{name}.store"), work, str(results)),
                                          nprocs=2, start_method="fork")
    return [json.load(open(results / f"rank{rank}.json")) for rank in range(2)]


def test_resume_latest_is_resolved_by_rank_0_for_every_rank(tmp_path):
    """Two ranks that list the run folder differently (rank 1 sees a newer run, e.g. a node whose view
    of shared storage is ahead or stale) resume the same checkpoint: rank 0's. When rank 0 finds none,
    every rank fails with its message (none waits for the others forever)."""
    seen_by_0, seen_by_1 = tmp_path / "view0", tmp_path / "view1"
    _checkpoint(seen_by_0 / "00000-a" / "checkpoint-000000.008.pt", 8)
    shutil.copytree(seen_by_0, seen_by_1)
    _checkpoint(seen_by_1 / "00001-b" / "checkpoint-000000.016.pt", 16)
    assert train.resume_source("latest", str(seen_by_1))[1].endswith("00001-b/checkpoint-000000.016.pt")

    views = [str(seen_by_0), str(seen_by_1)]
    answers = _on_two_ranks(tmp_path, "agree", lambda rank: distributed.on_rank0(
        lambda: train.resume_source("latest", views[rank])))
    assert answers[0] == answers[1] == ["checkpoint", str(seen_by_0 / "00000-a" / "checkpoint-000000.008.pt")]

    views = [str(tmp_path / "empty"), str(seen_by_1)]
    answers = _on_two_ranks(tmp_path, "none", lambda rank: distributed.on_rank0(
        lambda: train.resume_source("latest", views[rank])))
    assert answers[0] == answers[1] and answers[0][:2] == ["error", "CheckpointError"]
    assert "no valid checkpoint" in answers[0][2]


def test_a_check_that_fails_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    """E.g. one machine without its copy of the data: that rank raises its error, the others a copy
    naming where it happened (none goes on to wait for it)."""
    def open_data(rank):
        if rank == 1:
            raise DatasetError("data path '/data/x' does not exist")
        return "opened"
    answers = _on_two_ranks(tmp_path, "fail", lambda rank: distributed.fail_together(lambda: open_data(rank)))
    assert answers[1] == ["error", "DatasetError", "data path '/data/x' does not exist"]
    assert answers[0] == ["error", "DatasetError", f"{socket.gethostname()} (rank 1): data path '/data/x' does not exist"]
    answers = _on_two_ranks(tmp_path, "ok", lambda rank: distributed.fail_together(lambda: rank * 10))
    assert answers == [0, 10]
    # an exception whose class does not take one message arrives as a RuntimeError
    answers = _on_two_ranks(tmp_path, "odd", lambda rank: distributed.fail_together(
        lambda: rank or (_ for _ in ()).throw(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))))
    assert answers[1][:2] == ["error", "RuntimeError"] and "(rank 0): UnicodeDecodeError" in answers[1][2]


def test_a_rank_that_does_not_see_the_run_folder_is_named_on_every_rank(tmp_path):
    """On several machines the run folder must be shared: a rank that does not see the file rank 0
    wrote is found at the start (every rank gets the same list of machines, so all of them stop)."""
    (tmp_path / "options.json").write_text("{}")
    paths = [str(tmp_path / "options.json"), str(tmp_path / "elsewhere" / "options.json")]
    answers = _on_two_ranks(tmp_path, "shared", lambda rank: distributed.hosts_missing(paths[rank], wait_s=0.2))
    assert answers == [[socket.gethostname()]] * 2
    answers = _on_two_ranks(tmp_path, "shared_ok", lambda rank: distributed.hosts_missing(paths[0], wait_s=0.2))
    assert answers == [[], []]
    assert distributed.hosts_missing(paths[1], wait_s=0) == []      # a single process: nothing to compare


def test_replicas_that_drift_apart_stop_every_rank_with_the_last_good_checkpoint(tmp_path):
    """The snapshot's replica check: identical replicas pass; a parameter changed on rank 1 alone stops
    both ranks with a DivergenceError naming the module and the last good checkpoint (no traceback, no
    rank left waiting)."""
    def check(rank, drift):
        torch.manual_seed(0)
        recipe = types.SimpleNamespace(modules=lambda: {"D": module})
        module = torch.nn.Linear(3, 2)
        if drift and rank == 1:
            with torch.no_grad():
                module.weight[0, 0] += 1.0
        loop.check_replicas_in_sync(recipe, "run/checkpoint-000000.008.pt")
        return "in sync"
    assert _on_two_ranks(tmp_path, "same", lambda rank: check(rank, False)) == ["in sync", "in sync"]
    answers = _on_two_ranks(tmp_path, "drift", lambda rank: check(rank, True))
    assert answers[0] == answers[1] and answers[0][:2] == ["error", "DivergenceError"]
    assert "replicas of D drifted apart" in answers[0][2] and "run/checkpoint-000000.008.pt" in answers[0][2]


def test_on_rank0_single_process_runs_the_function_here():
    assert distributed.on_rank0(lambda: 7) == 7
    with pytest.raises(CheckpointError, match="x"):
        distributed.on_rank0(lambda: (_ for _ in ()).throw(CheckpointError("x")))


# --- two nodes on localhost ----------------------------------------------------------------------------

def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)   # the CPU runs use the reference ops
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(outdir):
    runs = ckpt_lib.run_dirs(str(outdir))
    assert len(runs) == 1, runs
    with open(os.path.join(runs[0], "stats.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return runs[0], [{k: v for k, v in row.items() if k.startswith("loss/")} | {"kimg": row["kimg"]} for row in rows]


@pytest.mark.slow
def test_two_nodes_on_localhost_train_as_one_machine(tmp_path):
    """Two torchrun processes (``--nnodes=2 --nproc_per_node=1``, one c10d rendezvous, as on two
    machines sharing the run folder): one run folder, one checkpoint written (by global rank 0), and
    the losses of every tick (the means over both ranks) exactly those of ``--gpus 2`` on one
    machine; the replicas stayed identical (the trainer compares them at every snapshot)."""
    port = _free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--rdzv-backend=c10d",
         f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=test", "-m", "ganops_models.train", *MICRO,
         "--outdir", str(tmp_path / "shared")], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        one_machine = subprocess.run([sys.executable, "-m", "ganops_models.train", *MICRO, "--gpus", "2", "--outdir",
                                      str(tmp_path / "one")], cwd=tmp_path, env=_env(), capture_output=True,
                                     text=True, timeout=600)
        outputs = []
        for node in nodes:
            out, err = node.communicate(timeout=600)
            assert node.returncode == 0, f"exit {node.returncode}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-5000:]}"
            outputs.append(out)
    finally:
        for node in nodes:   # one node that failed leaves the other waiting for it at the rendezvous
            if node.poll() is None:
                node.kill()
                node.communicate()
    assert one_machine.returncode == 0, one_machine.stderr[-5000:]

    run, losses = _losses(tmp_path / "shared")
    assert json.load(open(os.path.join(run, "options.json")))["world_size"] == 2
    assert [os.path.basename(p) for p in ckpt_lib.list_checkpoints(run)] == ["checkpoint-000000.016.pt"]
    assert sum(out.count("saved checkpoint-000000.016.pt") for out in outputs) == 1     # one writer
    assert ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.016.pt"))["progress"]["step"] == 4
    _, reference = _losses(tmp_path / "one")
    assert len(losses) == 2 and losses[0]["loss/G"] != losses[1]["loss/G"]
    assert len(reference) == 2
    for row, expected in zip(losses, reference):
        assert row == pytest.approx(expected, rel=1e-6)
