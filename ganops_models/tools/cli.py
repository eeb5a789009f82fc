"""Command-line behaviour shared by every tool: one-line usage errors, --network/--device/--class
arguments, and ``error: ...`` with exit status 2 for bad input instead of a traceback."""
import argparse
import sys
from typing import Callable, List, Optional

import torch

from ganops_models.errors import EXIT_BAD_INPUT, USER_ERRORS


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
    """torch.device(name), refusing CUDA on a machine without a GPU (say so instead of failing later)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device must be cpu or cuda, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return device


def run_main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Optional[List[str]]) -> int:
    """Parse ``argv`` and run ``body(args)``; a bad network, input or option prints ``error: ...``
    and returns 2."""
    args = parser.parse_args(argv)
    try:
        args.device = check_device(args.device)
        return body(args)
    except (*USER_ERRORS, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
