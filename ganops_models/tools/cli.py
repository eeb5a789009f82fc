"""Command-line behaviour shared by every tool: one-line usage errors, --network/--device/--class
arguments, ``error: ...`` with exit status 2 for bad input instead of a traceback, and SIGINT/SIGTERM
stopping a command cleanly (:func:`run_command`)."""
import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, List, Optional

import torch

from ganops_models.errors import EXIT_BAD_INPUT, USER_ERRORS, Interrupted

# What the running command has finished so far, said in the line an interrupt prints (see finished()).
_finished = ["nothing was finished"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage of a tool with many options would
    bury it): ``<prog>: error: <message> (see --help)``, exit status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)

NETWORK_HELP = ("checkpoint file (checkpoint-*.pt), a run directory (its newest valid checkpoint), "
                "or 'latest' (the newest run under ./runs)")


def add_common_arguments(p: argparse.ArgumentParser, noise_mode: bool = True) -> None:
    """--network, --device (default cuda when available), --class and (``noise_mode``) --noise-mode."""
    p.add_argument("--network", required=True, help=NETWORK_HELP)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--class", dest="class_idx", type=int, help="class index for conditional networks")
    if noise_mode:
        p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])


def check_device(name: str) -> torch.device:
    """torch.device(name) for cpu or cuda (cuda:N), refusing CUDA on a machine without a GPU and any
    other kind of device (say so instead of failing later)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return device


def finished(message: str) -> None:
    """Record what the running command has finished so far and where it is (e.g. 'wrote 12 image(s)
    to out/'); an interrupt prints it."""
    _finished[0] = message


# While an output is being finished, a signal waits in _pending (see finishing()).
_deferring = [False]
_pending: List[int] = []


@contextlib.contextmanager
def finishing(message: str):
    """Write one output in the block: SIGINT/SIGTERM wait until it is done (a few milliseconds for a
    file), then :func:`finished` records ``message`` and a waiting signal stops the command; so the
    interrupt line never counts a file one short or one too many."""
    _deferring[0] = True
    try:
        yield
        finished(message)
    finally:
        _deferring[0] = False
    if _pending:
        raise Interrupted(_pending.pop())


@contextlib.contextmanager
def signals_interrupt():
    """While the block runs, SIGINT and SIGTERM raise :class:`~ganops_models.errors.Interrupted` (so
    ``atomic_write``/``temporary_path`` remove their partial files; inside :func:`finishing` they
    wait for its end); the old handlers come back after. Only the main thread can take signals;
    elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        if _deferring[0]:
            _pending[:] = [signum]
            return
        raise Interrupted(signum)
    _pending.clear()
    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def interrupted_line(signum: int, note: str = "partial files were removed") -> str:
    """The one line an interrupted command prints: the signal, what was finished, ``note``."""
    return f"interrupted by {signal.Signals(signum).name}: {_finished[0]}; {note}"


def run_command(body: Callable[[], int], note: str = "partial files were removed") -> int:
    """Run ``body()`` the way every command runs: bad input (a user error, ``ValueError``, an output
    path the system refuses) prints ``error: ...`` and returns 2; SIGINT/SIGTERM print one line (what
    was finished, where, and ``note``) and return 130/143 (128 + the signal); no traceback either way."""
    finished("nothing was finished")
    try:
        with signals_interrupt():
            return body()
    except Interrupted as e:
        signum = e.signum
    except KeyboardInterrupt:
        signum = signal.SIGINT
    except (*USER_ERRORS, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(interrupted_line(signum, note), file=sys.stderr)
    return 128 + signum


def run_main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Optional[List[str]]) -> int:
    """Parse ``argv`` (an unknown flag or bad value: exit status 2) and run ``body(args)`` under
    :func:`run_command`; ``args.device``, when the parser has one, is checked first."""
    args = parser.parse_args(argv)

    def run() -> int:
        if hasattr(args, "device"):
            args.device = check_device(args.device)
        return body(args)
    return run_command(run)
