"""Time per training step of ``--gpus N`` against ``torchrun --nproc_per_node=N``, same options.

    python -m benchmarks.launch_overhead [--gpus 2] [--rounds 2] [--kimg 0.32] [--tick 0.064] [--code DIR]

Runs the two launches in turn (A B A B ...) on the CPU with the tiny preset on the built-in data, and
reads each run's own per-tick timing from its ``stats.jsonl``: the time per step is the median over
the ticks after the first (the first holds the start of the data workers and the first calls), so
start-up (imports, rendezvous, grids) is left out; the whole process's wall time is shown beside it.
Prints one row per launch (median over rounds), the ratio ``--gpus``/torchrun and the load average
before and after (the machine may be shared). ``--code`` times another checkout's trainer (e.g. the
commit before a change); the default is this one. Needs no GPU; a CPU run takes about a minute per
round on 2 cores.

Measured 2026-12-07 on a 2-core CPU machine shared with other jobs (load average 4.8 to 9), with
``python -m benchmarks.launch_overhead --rounds 2`` (options as printed: ``--cfg tiny --device cpu
--kimg 0.32 --tick 0.064 --snap 100000 --seed 0``), median ms per step after the first tick:

    code                                              --gpus 2   torchrun   --gpus/torchrun
    before (47dd868: spawned workers, no thread cap)  10745      250        43x
    after (forked workers, cores // N threads)        274        281        0.97x

"before": ``--code`` given a copy of commit 47dd868. Before, the first tick took 63 s with
``--gpus 2`` (workers spawned, each re-importing torch) and 1.4 s with torchrun; after, 1.8 and 1.3 s.
The whole process still takes longer with ``--gpus`` (41 s against 30 s): the launching process
checks the options and the data before it starts the others, which then import torch and open the data again.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(launch: List[str], options: List[str], outdir: str, code: str) -> Dict[str, float]:
    """One training run: {'step_ms': median ms per step after the first tick, 'first_tick_s', 'wall_s'}."""
    env = dict(os.environ, PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_NUM_THREADS", None)    # each launcher picks the threads per process itself
    start = time.monotonic()
    proc = subprocess.run([*launch, "-m", "ganops_models.train", *options, "--outdir", outdir], env=env,
                          cwd=os.path.dirname(outdir), capture_output=True, text=True)   # not from this folder
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(launch)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    (run,) = [os.path.join(outdir, e) for e in os.listdir(outdir)]
    with open(os.path.join(run, "stats.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    if len(rows) < 2:
        sys.exit("error: fewer than 2 ticks; give a larger --kimg or a smaller --tick")
    steps = [row["step"] - prev["step"] for prev, row in zip([{"step": 0}] + rows, rows)]
    per_step = [row["sec_per_tick"] / n * 1000 for row, n in zip(rows, steps)]
    return {"step_ms": statistics.median(per_step[1:]), "first_tick_s": rows[0]["sec_per_tick"], "wall_s": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each launch (default 2)")
    parser.add_argument("--kimg", type=float, default=0.32, help="images per run, thousands (default 0.32)")
    parser.add_argument("--tick", type=float, default=0.064, help="kimg per tick (default 0.064)")
    parser.add_argument("--code", default=ROOT, help="the checkout whose trainer runs (default: this one)")
    args = parser.parse_args(argv)
    options = ["--cfg", "tiny", "--device", "cpu", "--kimg", str(args.kimg), "--tick", str(args.tick),
               "--snap", "100000", "--seed", "0"]
    launches = {  # name: the command before "-m ganops_models.train", the options after it
        f"python -m ganops_models.train --gpus {args.gpus}": ([sys.executable], options + ["--gpus", str(args.gpus)]),
        f"torchrun --nproc_per_node={args.gpus}": ([sys.executable, "-m", "torch.distributed.run",
                                                    f"--nproc_per_node={args.gpus}"], options)}
    load_before = os.getloadavg()
    results = {name: [] for name in launches}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, (launch, launch_options)) in enumerate(launches.items()):
                results[name].append(_run(launch, launch_options, os.path.join(tmp, f"{r}-{i}"), args.code))
    load_after = os.getloadavg()
    print(f"tiny preset, built-in data, CPU, {os.cpu_count()} cores, {args.rounds} round(s), options: "
          f"{' '.join(options)}")
    print(f"{'launch':<44} {'ms/step':>9} {'first tick s':>13} {'process wall s':>15}")
    medians = {}
    for name, runs in results.items():
        medians[name] = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        m = medians[name]
        print(f"{name:<44} {m['step_ms']:>9.1f} {m['first_tick_s']:>13.2f} {m['wall_s']:>15.1f}")
    gpus, torchrun = (medians[name]["step_ms"] for name in launches)
    print(f"per step, --gpus / torchrun: {gpus / torchrun:.2f}x")
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{x:.2f}" for x in load_before)
          + "; after: " + ", ".join(f"{x:.2f}" for x in load_after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
