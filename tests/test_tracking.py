"""Experiment tracking (issue #33, item 6): --wandb and --mlflow get the TensorBoard scalars and grids,
read back from wandb's offline run and an MLflow file store; a resumed run continues the same tracker runs."""
import glob
import json
import os
import struct
import subprocess
import sys

import pytest

from ganops_models.errors import MissingExtraError
from ganops_models.training.options import TrainOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "1", "--workers", "0", "--device", "cpu", "--outdir", "runs"]

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _train(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline", WANDB_SILENT="true",
               MLFLOW_ALLOW_FILE_STORE="true", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "ganops_models.train", *MICRO, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _wandb_history(path):
    """The history rows of a wandb run file (.wandb: a LevelDB-style log of protobuf Records)."""
    from wandb.proto import wandb_internal_pb2
    data, pos, pending, rows = open(path, "rb").read(), 7, b"", []
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:             # block trailer
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def _tensorboard(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
    images = [(tag, e.step) for tag in acc.Tags()["images"] for e in acc.Images(tag)]
    return scalars, images


def test_wandb_and_mlflow_log_what_tensorboard_logs_and_a_resumed_run_continues_them(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    _train(["--kimg", "0.016", "--wandb", "toy", "--mlflow", uri], tmp_path)
    (first,) = glob.glob(str(tmp_path / "runs" / "*"))
    ids = json.load(open(os.path.join(first, "trackers.json")))
    _train(["--resume", first, "--kimg", "0.024"], tmp_path)     # a new run folder; the options keep the trackers
    run_dirs = sorted(glob.glob(str(tmp_path / "runs" / "*")))
    assert len(run_dirs) == 2 and json.load(open(os.path.join(run_dirs[1], "trackers.json"))) == ids
    scalars, images = {}, []
    for run_dir in run_dirs:
        run_scalars, run_images = _tensorboard(run_dir)
        for name, by_step in run_scalars.items():
            scalars.setdefault(name, {}).update(by_step)
        images += run_images
    assert {"loss/G", "loss/D", "sec_per_kimg"} <= set(scalars) and set(scalars["loss/G"]) == {8, 16, 24}
    assert len(images) == 6     # reals (in each folder), fakes_init and a grid per tick

    # wandb: one run id in both folders' offline runs; their history rows hold every scalar and grid
    files = [f for d in run_dirs for f in glob.glob(os.path.join(d, "wandb", "offline-run-*", "run-*.wandb"))]
    assert [os.path.basename(f) for f in files] == [f"run-{ids['wandb']['id']}.wandb"] * 2
    rows = [row for f in files for row in _wandb_history(f)]
    logged = {}
    for row in rows:
        for name, value in row.items():
            if name in scalars:
                logged.setdefault(name, {})[row["nimg"]] = value
    assert logged.keys() == scalars.keys()
    for name, by_step in scalars.items():
        assert logged[name] == pytest.approx(by_step, rel=1e-6), name
    grids = [(key.split("/")[0], row["nimg"]) for row in rows for key in row if key.endswith("/_type")]
    assert sorted(grids) == sorted(images)

    # MLflow: one run; every scalar at each step, one artifact per grid
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(ids["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and set(run.data.metrics) == set(scalars)
    assert len(client.search_runs([run.info.experiment_id])) == 1
    for name, by_step in scalars.items():
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert history == pytest.approx(by_step, rel=1e-6), name
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "grids")]
    grid_files = {f"grids/{os.path.basename(p)}" for d in run_dirs for p in glob.glob(f"{d}/*.png")}
    assert sorted(artifacts) == sorted(grid_files)


@pytest.mark.parametrize("flag,module,extra", [("wandb", "wandb", "wandb"), ("mlflow", "mlflow", "mlflow")])
def test_a_missing_tracker_package_names_its_extra(monkeypatch, flag, module, extra):
    monkeypatch.setitem(sys.modules, module, None)       # import fails as if it were not installed
    with pytest.raises(MissingExtraError, match=fr"pip install 'ganops\[{extra}\]'"):
        TrainOptions(device="cpu", **{flag: "x"}).check(1)


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from ganops_models.training.tracking import TRACKERS_FILE, open_trackers
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    (first,) = open_trackers(str(tmp_path), None, uri, {"batch": 4})
    first.scalars({"loss/G": 1.0}, 8)
    first.close()
    (again,) = open_trackers(str(tmp_path), None, uri)           # what a resumed run in the same folder does
    again.scalars({"loss/G": 0.5}, 16)
    again.close()
    assert again.run_id == first.run_id == json.load(open(tmp_path / TRACKERS_FILE))["mlflow"]["run_id"]
    history = MlflowClient(tracking_uri=uri).get_metric_history(first.run_id, "loss/G")
    assert [(m.step, m.value) for m in history] == [(8, 1.0), (16, 0.5)]
    (other,) = open_trackers(str(tmp_path), None, f"file:{tmp_path / 'elsewhere'}")   # another URI: a new run
    other.close()
    assert other.run_id != first.run_id


def test_only_rank_0_logs(tmp_path, monkeypatch):
    from ganops_models.training.reporting import Reporter
    from ganops_models.training.tracking import TRACKERS_FILE
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    reporter = Reporter(str(tmp_path / "run"), 1, 16, 0, mlflow=f"file:{tmp_path / 'mlruns'}")
    reporter.stats({"kimg": 0.008, "tick": 1, "loss/G": 1.0})
    reporter.close()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "run" / TRACKERS_FILE).exists()


def test_a_tracker_that_fails_mid_run_is_dropped_with_a_warning(tmp_path, capsys):
    from ganops_models.training.reporting import Reporter

    class Broken:
        flag = "--mlflow"

        def scalars(self, values, nimg):
            raise ConnectionError("server gone\nmore")

    reporter = Reporter(str(tmp_path / "run"), 0, 16, 0, tensorboard=False)
    reporter._trackers = [Broken()]
    reporter.stats({"kimg": 0.008, "tick": 1, "loss/G": 1.0})
    reporter.stats({"kimg": 0.016, "tick": 2, "loss/G": 0.5})          # no second warning: it was dropped
    reporter.close()
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("warning: --mlflow stopped logging (server gone); the run goes on without it") == 1
