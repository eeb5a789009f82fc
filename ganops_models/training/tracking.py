"""Experiment trackers: Weights & Biases (``--wandb PROJECT``) and MLflow (``--mlflow URI``).

Each one receives what TensorBoard receives, when it receives it (:class:`~ganops_models.training.
reporting.Reporter` calls them on rank 0 only): every tick's scalars and the metrics, at the number
of images trained (``nimg``), and every image grid (``reals``, ``fakes_init``, ``fakes<kimg>``).

* wandb: ``wandb.init(project=PROJECT, dir=<run folder>)``; scalars and grids (``wandb.Image``, the
  grids under the keys ``reals`` and ``fakes`` as in TensorBoard) are logged with a ``nimg`` value,
  which is declared the x axis of every chart (``define_metric``), so a resumed run that trains again
  from its checkpoint's nimg draws on the same axis. ``WANDB_MODE=offline`` writes the run under
  ``<run folder>/wandb/`` only (``wandb sync`` uploads it later).
* MLflow: a run of the experiment :data:`MLFLOW_EXPERIMENT` at the tracking URI (``http://host:5000``,
  ``file:./mlruns``, ...; MLflow 3 refuses ``file:`` stores unless ``MLFLOW_ALLOW_FILE_STORE=true``, and
  mlflow-skinny has no ``sqlite:`` store), named after the run folder; scalars are metrics with
  ``step = nimg``, each grid the artifact ``grids/<name>.png``.

A tracker that cannot start stops the run before training (:class:`OptionsError`); one that fails
later is dropped with a warning in the log
(:meth:`ganops_models.training.reporting.Reporter._track`), and training goes on.

Resume: the tracker's run id is kept in ``<run folder>/trackers.json`` (:data:`TRACKERS_FILE`). A
resumed run (``--resume latest`` trains on in the same folder, ``--resume <folder or checkpoint>`` in
a new one: the ids are then taken from the checkpoint's folder) that logs to the same project (wandb,
``resume='allow'``) or URI (MLflow) continues that tracker run; another project or URI starts a new
one. Ticks trained again after a resume (those past the checkpoint) are logged again: wandb draws
them on the same ``nimg`` axis, MLflow keeps both values of such a step.
"""
import json
import os
import time
from typing import Dict, List, Optional

import numpy as np

from ganops_models.errors import MissingExtraError, OptionsError
from ganops_models.extras import require
from ganops_models.files import atomic_write

TRACKERS_FILE = "trackers.json"
MLFLOW_EXPERIMENT = "ganops"


def _saved(run_dir: str) -> dict:
    try:
        with open(os.path.join(run_dir, TRACKERS_FILE)) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _save(run_dir: str, name: str, entry: dict) -> None:
    saved = _saved(run_dir)
    saved[name] = entry
    with atomic_write(os.path.join(run_dir, TRACKERS_FILE)) as f:
        f.write(json.dumps(saved, indent=1).encode())


def _resume_id(run_dirs: List[str], name: str, where_key: str, where: str, id_key: str) -> Optional[str]:
    """The run id saved for tracker ``name`` in the first of ``run_dirs`` where it logged to the same
    ``where`` (project or URI)."""
    for run_dir in run_dirs:
        entry = _saved(run_dir).get(name)
        if isinstance(entry, dict) and entry.get(where_key) == where and isinstance(entry.get(id_key), str):
            return entry[id_key]
    return None


class WandbTracker:
    """A wandb run in ``project`` (see the module docstring)."""
    flag = "--wandb"

    def __init__(self, project: str, run_dir: str, config: Optional[dict] = None, previous: Optional[str] = None):
        self.wandb = require("wandb", "wandb", "--wandb")
        run_id = _resume_id([run_dir, previous] if previous else [run_dir], "wandb", "project", project, "id")
        self.run = self.wandb.init(project=project, dir=run_dir, id=run_id, resume="allow" if run_id else None,
                                   name=os.path.basename(os.path.normpath(run_dir)), config=config)
        self.run.define_metric("nimg")
        self.run.define_metric("*", step_metric="nimg")
        _save(run_dir, "wandb", {"project": project, "id": self.run.id})

    def scalars(self, values: Dict[str, float], nimg: int) -> None:
        self.run.log({**values, "nimg": nimg})

    def image(self, tag: str, name: str, grid_u8: np.ndarray, nimg: int) -> None:
        self.run.log({tag: self.wandb.Image(grid_u8, caption=name), "nimg": nimg})

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    """An MLflow run at ``uri`` (see the module docstring)."""
    flag = "--mlflow"

    def __init__(self, uri: str, run_dir: str, config: Optional[dict] = None, previous: Optional[str] = None):
        mlflow = require("mlflow", "mlflow", "--mlflow")
        self.Metric, Param = mlflow.entities.Metric, mlflow.entities.Param
        self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        self.run_id = _resume_id([run_dir, previous] if previous else [run_dir], "mlflow", "uri", uri, "run_id")
        if self.run_id is None:
            experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(MLFLOW_EXPERIMENT))
            run = self.client.create_run(experiment_id, run_name=os.path.basename(os.path.normpath(run_dir)))
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=[Param(k, json.dumps(v)[:500])
                                                       for k, v in sorted((config or {}).items())])
        else:
            self.client.update_run(self.run_id, status="RUNNING")
        _save(run_dir, "mlflow", {"uri": uri, "run_id": self.run_id})

    def scalars(self, values: Dict[str, float], nimg: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self.Metric(k, float(v), now, nimg) for k, v in values.items()])

    def image(self, tag: str, name: str, grid_u8: np.ndarray, nimg: int) -> None:
        self.client.log_image(self.run_id, grid_u8, artifact_file=f"grids/{name}.png")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def open_trackers(run_dir: str, wandb: Optional[str], mlflow: Optional[str], config: Optional[dict] = None,
                  previous: Optional[str] = None) -> List:
    """The trackers the options ask for (none when both are None); ``config``: the run's options;
    ``previous``: the folder of the checkpoint a resumed run starts from. A tracker that cannot start
    (a bad URI, no login) is an :class:`OptionsError` naming the flag."""
    trackers = []
    for value, cls in ((wandb, WandbTracker), (mlflow, MlflowTracker)):
        if not value:
            continue
        try:
            trackers.append(cls(value, run_dir, config, previous))
        except MissingExtraError:
            raise
        except Exception as e:   # the library's own errors (e.g. MlflowException, wandb.Error): one line
            for tracker in trackers:
                tracker.close()
            detail = str(e).strip().splitlines()[0][:400] if str(e).strip() else type(e).__name__
            raise OptionsError(f"{cls.flag} {value}: the tracker did not start ({detail})") from None
    return trackers


__all__ = ["MLFLOW_EXPERIMENT", "TRACKERS_FILE", "MlflowTracker", "WandbTracker", "open_trackers"]
