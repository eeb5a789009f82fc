"""The ``train`` command line, generated from the models' option dataclasses.

Every field declared with :func:`ganops_models.training.options.option` (and ``cli=True``) of any
model's options class becomes one flag; a field several models share is one flag. Its help is the
field's, with the default when every model has the same one, and the models that have it when not
all do. Values not given stay ``None``, so :func:`given_values` returns exactly what was typed.
"""
import argparse
import dataclasses
from typing import Any, Dict, Iterable, List, Type

from ganops_models.errors import OptionsError
from ganops_models.tools.cli import ArgumentParser
from ganops_models.training.options import TrainOptions

# Switches of the command itself, not training options.
COMMAND_SWITCHES = ("gpus", "dry_run", "fp32")


def parse_bool(text: str) -> bool:
    """click's BOOL: 1/true/t/yes/y/on or 0/false/f/no/n/off (any case)."""
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false, yes/no), got {text!r}")


NONE = "none"     # '--ema-rampup none': given, as None (a parser default None means not given)


def float_or_none(text: str):
    """A number, or 'none' (kept as :data:`NONE` until :func:`given_values`)."""
    if str(text).strip().lower() == NONE:
        return NONE
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value[::-1])
    return str(value)


def _flag_fields(option_classes: Iterable[Type[TrainOptions]]) -> Dict[str, List]:
    """name -> [(model, field)] over the options classes, in declaration order."""
    out: Dict[str, List] = {}
    for cls in option_classes:
        for f in dataclasses.fields(cls):
            if f.metadata.get("cli"):
                out.setdefault(f.name, []).append((cls.model_name(), f))
    return out


def _help(name: str, owners: List, all_models: List[str]) -> str:
    meta = owners[0][1].metadata
    text = meta["help"]
    defaults = {repr(f.default) for _, f in owners}
    default = owners[0][1].default
    if "(default" not in text and len(defaults) == 1 and default is not None and len(owners) == len(all_models):
        text += f" (default: {_show(default)})"
    elif "(default" not in text and len(defaults) > 1:
        text += " (default: the model's or preset's; -n shows it)"
    models = [m for m, _ in owners]
    if len(models) < len(all_models):
        text += f" [{', '.join(models)}]"
    return text


def add_option_flags(parser: argparse.ArgumentParser, option_classes: List[Type[TrainOptions]]) -> None:
    all_models = [cls.model_name() for cls in option_classes]
    for name, owners in _flag_fields(option_classes).items():
        meta = owners[0][1].metadata
        flags = list(meta["flags"]) or [f"--{name.replace('_', '-')}"]
        kwargs: Dict[str, Any] = dict(dest=name, default=None, help=_help(name, owners, all_models))
        kind = meta["kind"]
        if kind == "bool":
            kwargs.update(nargs="?", const=True, type=parse_bool, metavar="BOOL")
        elif kind == "flag":
            kwargs.update(action="store_const", const=True)
        elif kind == "float_or_none":
            kwargs.update(type=float_or_none)
        else:
            if meta["type"] is not None:
                kwargs["type"] = meta["type"]
            choices = sorted({c for _, f in owners for c in (f.metadata["choices"] or ())})
            if choices:
                kwargs["choices"] = choices
            if meta["metavar"]:
                kwargs["metavar"] = meta["metavar"]
        parser.add_argument(*flags, **kwargs)


def build_parser(option_classes: List[Type[TrainOptions]], presets: Dict, description: str,
                 epilog_presets: str) -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.train", description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Options left out take their value from the --cfg preset, else the model's default; "
                              "-n shows which.\n" + f"Presets (--cfg, model, what):\n{epilog_presets}")
    add_option_flags(p, option_classes)
    p._option_string_actions["--cfg"].choices = sorted(presets)
    p._option_string_actions["--model"].choices = sorted(cls.model_name() for cls in option_classes)
    p.add_argument("--gpus", type=int, help="processes to start on this machine, one per GPU (default: 1, or "
                                            "torchrun's)")
    p.add_argument("--fp32", nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL",
                   help="same as --precision fp32 (default: false)")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="print the resolved options, where each value came from, and exit")
    return p


def given_values(args: argparse.Namespace) -> Dict[str, Any]:
    """The options given on the command line (``--fp32`` becomes ``--precision fp32``)."""
    if args.fp32 and args.precision not in (None, "fp32"):
        raise OptionsError(f"--fp32 conflicts with --precision {args.precision}; give one of them")
    given = {k: None if v is NONE else v for k, v in vars(args).items()
             if v is not None and k not in COMMAND_SWITCHES}
    if args.fp32:
        given["precision"] = "fp32"
    return given
