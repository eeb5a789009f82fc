"""``--gpus N``: start N trainer processes on this machine, as NVIDIA's train.py does.

Each process gets the environment torchrun would give it (RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR/PORT on 127.0.0.1, and a thread count: :func:`threads_per_process`)
and runs the entry function it is given (the train command's ``main``) with the same arguments, so
:mod:`.distributed` treats it exactly like a torchrun process. What one machine cannot do (more GPUs
than it has) is refused with the torchrun command for several machines (docs/multinode.md).
"""
import os
import socket
import sys
from typing import Callable, List, Optional

import torch

from ganops_models.training.distributed import DistInfo
from ganops_models.errors import OptionsError


def should_launch(gpus: Optional[int]) -> bool:
    """True when this process must start the others (``--gpus N > 1`` and not already under torchrun)."""
    return gpus is not None and gpus > 1 and "WORLD_SIZE" not in os.environ


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_process(processes: int, environ=None) -> int:
    """Intra-op threads for each of ``processes`` trainer processes on this machine: the user's
    ``OMP_NUM_THREADS`` when it is set (a positive integer), else the usable cores shared out evenly
    (``cores // processes``, at least 1). Left alone, each process would use every core, and N
    processes would contend for them (many times slower per step on a CPU; docs/multinode.md).
    torchrun gives each process 1 thread when it starts several; sharing the cores out is the same
    when processes == cores and uses the rest when there are more cores."""
    environ = os.environ if environ is None else environ
    given = environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, usable_cores() // processes)


def check_gpus(gpus: Optional[int], device: Optional[str], argv: List[str], dist: DistInfo) -> None:
    """``--gpus N`` is possible here: N >= 1, equal to torchrun's world size when under torchrun, at
    most the visible GPUs for ``--device cuda`` and at most the usable CPU cores for ``--device cpu``."""
    if gpus is None:
        return
    if gpus < 1:
        raise OptionsError(f"--gpus must be >= 1, got {gpus}")
    if "WORLD_SIZE" in os.environ and dist.world_size != gpus:
        raise OptionsError(f"--gpus {gpus} but this process is one of {dist.world_size} started by torchrun; "
                           f"leave out --gpus under torchrun")
    visible = torch.cuda.device_count()
    on_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    cores = usable_cores()
    if not on_cuda and gpus > cores and "WORLD_SIZE" not in os.environ:
        raise OptionsError(f"--gpus {gpus} --device cpu: this machine has {cores} usable CPU core(s); start at "
                           f"most {cores} process(es), or train on several machines with torchrun (docs/multinode.md)")
    if on_cuda and gpus > visible:
        rest = " ".join(_without_gpus(argv))
        raise OptionsError(f"--gpus {gpus}: this machine has {visible} visible CUDA GPU(s). To train on several "
                           f"machines, run on each of them: torchrun --nnodes=<machines> "
                           f"--nproc_per_node=<GPUs per machine> --rdzv-backend=c10d "
                           f"--rdzv-endpoint=<first machine>:29500 -m ganops_models.train {rest} (with --outdir "
                           f"on storage every machine shares; see docs/multinode.md)")


def launch(entry: Callable[[List[str]], int], argv: List[str], processes: int) -> int:
    """Run ``entry(argv)`` in ``processes`` trainer processes to the end; returns 0 or the first failing
    exit status. ``entry`` must be a module-level function (it is pickled to the processes)."""
    port = _free_port()
    threads = threads_per_process(processes)
    try:
        torch.multiprocessing.spawn(_process_main, args=(entry, argv, processes, port, threads), nprocs=processes,
                                    join=True)
    except torch.multiprocessing.ProcessExitedException as e:
        return e.exit_code or 1
    except torch.multiprocessing.ProcessRaisedException as e:
        print(f"error: a training process failed:\n{e}", file=sys.stderr)
        return 1
    return 0


def _process_main(rank: int, entry: Callable[[List[str]], int], argv: List[str], processes: int, port: int,
                  threads: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes),
                      LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      OMP_NUM_THREADS=str(threads))
    torch.set_num_threads(threads)
    code = entry(argv)
    if code:
        sys.exit(code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_gpus(argv: List[str]) -> List[str]:
    """argv without its ``--gpus N`` / ``--gpus=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            out.append(arg)
    return out
