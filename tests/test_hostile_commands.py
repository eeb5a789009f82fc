"""Commands under attack (issues 29 and 35): interrupts leave no partial file under a final name and
exit 130/143 with one line; user text cannot steer outputs out of their folder; bad values (non-finite
networks or --trunc, unbounded seeds, impossible --gpus/--device/--outdir/--mbstd-group, unknown
flags) exit 2 with a message, never a traceback; a resume applies a changed --glr/--dlr and leaves no
duplicate stats rows."""
import glob
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image

from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.tools import cli, generate, train, video
from ganops_models.training.reporting import drop_stats_after
from latent_helpers import save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "1", "--workers", "0", "--device", "cpu", "--aug", "noaug"]
COMMANDS = ("train", "generate", "video", "project", "style_mixing", "metrics", "convert", "dataset_tool", "cluster")

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


# --- helpers -----------------------------------------------------------------------------------------

def _start(tool, args):
    """``python -m ganops_models.<tool> args`` from the worktree root, one intra-op thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", f"ganops_models.{tool}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=60.0):
    """Poll until ``predicate()`` holds; fail if the process ends first or the time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the command ended before the signal: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the command never reached the point to interrupt")


def _stop(proc, signum):
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _assert_one_interrupt_line(err, signum):
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line and "it/s]" not in line]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by {signal.Signals(signum).name}: "), err
    return lines[0]


def _nan_checkpoint(path, value=float("nan"), names=""):
    """A checkpoint whose generators' weights (those whose name contains ``names``) are all ``value``:
    NaN (a diverged run, which the loader refuses) or finite but so large that the pixels overflow."""
    save_checkpoint(path)
    ckpt = ckpt_lib.load_checkpoint(str(path))
    for net in ("G", "G_ema"):
        for name, tensor in ckpt["state"][net].items():
            if tensor.is_floating_point() and names in name:
                tensor.fill_(value)
    ckpt_lib.save_checkpoint(str(path), **{k: ckpt[k] for k in ("model", "arch", "options", "data", "progress",
                                                                  "state")})
    return str(path)


# --- interrupts: whole or absent, one line, 130 / 143 --------------------------------------------------

def _signal_when(predicate, signum, timeout=60.0):
    """A thread that sends ``signum`` to this process once ``predicate()`` holds (the command runs in
    the main thread, where Python takes signals); join it after the command returned."""
    def watch():
        deadline = time.time() + timeout
        while time.time() < deadline and not predicate():
            time.sleep(0.01)
        os.kill(os.getpid(), signum)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _assert_whole_pngs(folder):
    assert [n for n in os.listdir(folder) if not n.startswith("seed")] == []   # no temporary file left
    for png in glob.glob(os.path.join(folder, "seed*.png")):
        with Image.open(png) as img:
            img.load()                                                       # whole: decodes to the end


def test_generate_command_interrupted_by_ctrl_c(tmp_path):
    """The real entry point in a subprocess: SIGINT after the first PNG."""
    ckpt = save_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "out"
    proc = _start("generate", ["--network", ckpt, "--seeds", "0-999999", "--outdir", str(out), "--device", "cpu"])
    _wait_for(lambda: glob.glob(str(out / "seed*.png")), proc)
    code, err = _stop(proc, signal.SIGINT)
    assert code == 130
    line = _assert_one_interrupt_line(err, signal.SIGINT)
    written = len(glob.glob(str(out / "seed*.png")))
    assert line == (f"interrupted by SIGINT: wrote {written} of 1000000 image(s) to {out} (seed<NNNN>.png); "
                    f"partial files were removed")
    _assert_whole_pngs(out)


@pytest.mark.parametrize("signum, after", [(signal.SIGINT, 3), (signal.SIGTERM, 1), (signal.SIGTERM, 40)])
def test_generate_interrupted_at_several_points(tmp_path, capsys, signum, after):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "out"
    watcher = _signal_when(lambda: len(glob.glob(str(out / "seed*.png"))) >= after, signum)
    code = generate.main(["--network", ckpt, "--seeds", "0-999999", "--outdir", str(out), "--device", "cpu"])
    watcher.join()
    assert code == 128 + signum
    written = len(glob.glob(str(out / "seed*.png")))
    line = _assert_one_interrupt_line(capsys.readouterr().err, signum)
    assert f"wrote {written} of 1000000 image(s) to {out}" in line
    _assert_whole_pngs(out)


@pytest.mark.parametrize("signum, ext", [(signal.SIGINT, ".mp4"), (signal.SIGTERM, ".mp4"), (signal.SIGINT, ".gif")])
def test_video_interrupted_leaves_no_video(tmp_path, capsys, signum, ext):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    target = tmp_path / f"interp{ext}"
    started = []

    def encoding():       # frames go into the temporary file (mp4: ffmpeg has written some; gif: for 0.3 s)
        tmp = [n for n in os.listdir(tmp_path) if n.endswith(".tmp" + ext)]
        started.extend(time.time() for _ in tmp[:1])
        if ext == ".gif":
            return tmp and time.time() - started[0] > 0.3
        return tmp and os.path.getsize(tmp_path / tmp[0]) > 0
    watcher = _signal_when(encoding, signum)
    code = video.main(["--network", ckpt, "--seeds", "0,1", "--frames", "100000", "--out", str(target),
                       "--device", "cpu", "--no-loop"])
    watcher.join()
    assert started and code == 128 + signum
    line = _assert_one_interrupt_line(capsys.readouterr().err, signum)
    assert line.startswith(f"interrupted by {signal.Signals(signum).name}: {target} was not written (")
    assert "of 100001 frames done); partial files were removed" in line
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]          # neither interp.mp4 nor its temporary file


def test_training_interrupted_says_how_to_resume(tmp_path, capsys):
    watcher = _signal_when(lambda: glob.glob(str(tmp_path / "*" / "checkpoint-*.pt")), signal.SIGINT)
    code = train.main(MICRO + ["--kimg", "10", "--outdir", str(tmp_path)])
    watcher.join()
    run_dir, = ckpt_lib.run_dirs(str(tmp_path))
    line = _assert_one_interrupt_line(capsys.readouterr().err, signal.SIGINT)
    assert code == 130
    assert line == (f"interrupted by SIGINT: training in {run_dir} stopped; resume from its last checkpoint with "
                    f"python -m ganops_models.train --resume {run_dir}; every checkpoint written is whole")
    for path in ckpt_lib.list_checkpoints(run_dir):
        ckpt_lib.load_checkpoint(path)
    assert not [n for n in os.listdir(run_dir) if ".tmp" in n]


def test_resume_refuses_a_new_augmentation(trained_run, tmp_path, capsys):
    _, run_dir = trained_run
    ckpt = os.path.join(run_dir, ckpt_lib.checkpoint_name(16))
    assert train.main(MICRO[:-2] + ["--aug", "ada", "--resume", ckpt, "--dry-run", "--outdir", str(tmp_path)]) == 2
    assert "--aug ada: a resumed run keeps its aug (noaug)" in capsys.readouterr().err


def test_run_command_turns_signals_into_exit_status_and_restores_handlers(capsys):
    before = signal.getsignal(signal.SIGTERM)

    def body():
        cli.finished("wrote 3 of 9 things to here")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0
    assert cli.run_command(body) == 143
    assert capsys.readouterr().err == ("interrupted by SIGTERM: wrote 3 of 9 things to here; "
                                       "partial files were removed\n")
    assert signal.getsignal(signal.SIGTERM) is before


# --- paths stay inside ----------------------------------------------------------------------------------

@pytest.mark.parametrize("desc", ["../../../elsewhere", "a/b", "x/../../y", "/tmp/abs"])
def test_desc_cannot_leave_outdir(tmp_path, capsys, desc):
    outdir = tmp_path / "deep" / "runs"
    code = train.main(MICRO + ["--kimg", "0.004", "--desc", desc, "--outdir", str(outdir)])
    err = capsys.readouterr().err
    assert code == 2 and "--desc" in err and "plain name" in err, err
    assert list(tmp_path.rglob("*")) == []            # no run folder anywhere, no stray 00000-.. folder


# --- bad values: exit 2, a message, no traceback ----------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--trunc", "nan"], "--trunc must be a finite number"),
    (["--trunc", "inf"], "--trunc must be a finite number"),
    (["--device", "tpu"], "--device must be cpu or cuda, got 'tpu'"),
    (["--seeds", "4294967296"], "below 2**32"),
])
def test_generate_refuses_bad_values(tmp_path, capsys, args, message):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", ckpt, "--outdir", str(tmp_path / "o"), "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_nan_network_is_refused_by_generate_and_video(tmp_path, capsys):
    nan = _nan_checkpoint(tmp_path / "nan.pt")          # NaN weights: the loader refuses the file
    assert generate.main(["--network", nan, "--seeds", "0-3", "--outdir", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "holds non-finite weights" in capsys.readouterr().err
    ckpt = _nan_checkpoint(tmp_path / "huge.pt", 3e38, "torgb")   # finite weights, pixels that overflow
    assert generate.main(["--network", ckpt, "--seeds", "0-3", "--outdir", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "NaN or infinite pixels" in capsys.readouterr().err
    assert os.listdir(tmp_path / "o") == []                                  # no black PNG
    assert generate.main(["--network", ckpt, "--seeds", "0-3", "--grid", "--outdir", str(tmp_path / "o"),
                          "--device", "cpu"]) == 2
    assert video.main(["--network", ckpt, "--seeds", "0,1", "--frames", "2", "--out", str(tmp_path / "v.gif"),
                       "--device", "cpu"]) == 2
    assert "NaN or infinite pixels" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["huge.pt", "nan.pt", "o"]


def test_huge_seed_grid_is_refused_before_anything_is_allocated(tmp_path):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    code = (limit + "import sys; from ganops_models.tools.generate import main; "
            f"sys.exit(main(['--network', {ckpt!r}, '--seeds', '0-99999999', '--grid', '--outdir', "
            f"{str(tmp_path / 'o')!r}, '--device', 'cpu']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "names 100000000 seeds; at most 1024 per command" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(ValueError, match="at most 1000000 per command"):
        generate.parse_seeds("0-99999999")


@pytest.mark.parametrize("make_outdir, what", [
    (lambda tmp: str(tmp / "file.txt" / "sub"), "Not a directory"),
    (lambda tmp: "/proc/ganops-outputs", "cannot create the folder"),
])
def test_outdir_the_system_refuses(tmp_path, capsys, make_outdir, what):
    (tmp_path / "file.txt").write_text("a file")
    ckpt = save_checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", ckpt, "--seeds", "0", "--outdir", make_outdir(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --outdir: ") and what in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--gpus", "999", "--device", "cpu"], "--gpus 999 --device cpu: this machine has"),
    (["--mbstd-group", "3"], "--batch-gpu must be a multiple of --mbstd-group"),
])
def test_train_refuses_impossible_settings(tmp_path, capsys, argv, message):
    assert train.main(MICRO[:-4] + ["--aug", "noaug", *argv, "--dry-run", "--outdir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


REQUIRED = {"generate": ["--network", "n", "--outdir", "o"], "video": ["--network", "n", "--seeds", "0", "--out", "o.mp4"],
            "project": ["--network", "n", "--target", "t", "--outdir", "o"],
            "style_mixing": ["--network", "n", "--rows", "0", "--cols", "1", "--out", "o.png"],
            "metrics": ["--metrics", "swd", "--network", "n"], "convert": ["--network", "n", "--out", "o.pt"],
            "dataset_tool": ["--source", "s", "--dest", "d"], "cluster": ["--source", "s", "--k", "2", "--outdir", "o"],
            "train": []}


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_flag_exits_2(command, capsys):
    main = importlib.import_module(f"ganops_models.tools.{command}").main
    with pytest.raises(SystemExit) as exit_:
        main([*REQUIRED[command], "--no-such-flag"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-flag" in err and "Traceback" not in err


# --- resume ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A micro run to kimg 0.024 (3 ticks, a checkpoint each); its last checkpoint is removed, as if
    the run had been killed after writing tick 3's stats and before its checkpoint."""
    outdir = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    assert train.main(MICRO + ["--kimg", "0.024", "--outdir", str(outdir)]) == 0
    run_dir, = ckpt_lib.run_dirs(str(outdir))
    os.remove(os.path.join(run_dir, ckpt_lib.checkpoint_name(24)))
    return str(outdir), run_dir


def _stats_kimgs(run_dir):
    with open(os.path.join(run_dir, "stats.jsonl")) as f:
        return [json.loads(line)["kimg"] for line in f]


def test_resume_replays_no_stats_row_twice(trained_run):
    outdir, run_dir = trained_run
    assert _stats_kimgs(run_dir) == [0.008, 0.016, 0.024]
    assert train.main(MICRO + ["--resume", "latest", "--kimg", "0.032", "--outdir", outdir]) == 0
    assert _stats_kimgs(run_dir) == [0.008, 0.016, 0.024, 0.032]


def test_stats_rows_past_the_checkpoint_and_a_torn_line_are_dropped(tmp_path):
    path = tmp_path / "stats.jsonl"
    rows = [json.dumps({"tick": t, "kimg": t * 0.008}) + "\n" for t in (1, 2, 3)]
    path.write_text("".join(rows) + '{"tick": 4, "kim')                  # killed while writing tick 4
    assert drop_stats_after(str(path), 16) == 2
    assert path.read_text() == "".join(rows[:2])
    assert drop_stats_after(str(path), 16) == 0 and drop_stats_after(str(tmp_path / "none.jsonl"), 0) == 0


def test_resume_applies_new_learning_rates_to_the_optimisers(trained_run, tmp_path, capsys):
    _, run_dir = trained_run
    ckpt = os.path.join(run_dir, ckpt_lib.checkpoint_name(16))
    stored = ckpt_lib.load_checkpoint(ckpt)["state"]
    assert stored["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.0025)     # tiny: no path length, c = 1
    assert train.main(MICRO + ["--resume", ckpt, "--glr", "0.001", "--dlr", "0.002", "--kimg", "0.024",
                               "--outdir", str(tmp_path)]) == 0
    new_run, = ckpt_lib.run_dirs(str(tmp_path))
    final = ckpt_lib.load_checkpoint(os.path.join(new_run, ckpt_lib.checkpoint_name(24)))["state"]
    assert final["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.001)             # no path length: c = 1
    assert final["opt_D"]["param_groups"][0]["lr"] == pytest.approx(0.002 * 16 / 17)   # c = 16/17
    log = open(os.path.join(new_run, "log.txt")).read()
    assert "learning rates G 0.001, D 0.001882" in log
    assert "--glr 0.001 applied (the checkpoint had 0.0025)" in log and "--dlr 0.002 applied" in log
