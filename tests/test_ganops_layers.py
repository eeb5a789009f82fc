"""The layers of the ganops package, checked by parsing every module's imports with ``ast``.

Lowest to highest (a module imports only from its own layer or lower ones, and no import circles):
  0 base            ganops._registry, ganops._extension, ganops._alloc
  1 ref             ganops.ref.*            (plain PyTorch; imports only ganops.ref, torch, numpy, stdlib)
  2 triton_kernels  ganops.triton_kernels.*
  3 ops             ganops.ops.*            (public ops: checks, dispatch, custom ops and autograd)
  4 api             ganops.nn, ganops.compat.*
  5 top             ganops (__init__), ganops.__main__, ganops._diagnostics
Function-level (lazy) imports count like module-level ones.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ganops"

LAYERS = [
    ("base", ("ganops._registry", "ganops._extension", "ganops._alloc")),
    ("ref", ("ganops.ref",)),
    ("triton_kernels", ("ganops.triton_kernels",)),
    ("ops", ("ganops.ops",)),
    ("api", ("ganops.nn", "ganops.compat")),
    ("top", ("ganops", "ganops.__main__", "ganops._diagnostics")),
]
REF_THIRD_PARTY = {"torch", "numpy"}
HEAVY = ("scipy", "PIL", "tqdm", "tensorboard", "sklearn", "imagehash", "ganops_models")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    """Index of the layer of a ganops module (the longest matching prefix decides)."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _imports(module: str):
    """Absolute names of everything ``module`` imports (ganops submodules resolved to modules)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                child = f"{source}.{alias.name}"
                names.add(child if child in MODULES else source)
    return names


GRAPH = {m: {n for n in _imports(m) if n in MODULES and n != m} for m in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_higher_layer(module):
    upward = sorted(n for n in GRAPH[module] if _layer(n) > _layer(module))
    assert not upward, (f"{module} (layer {LAYERS[_layer(module)][0]}) imports higher layers: "
                        + ", ".join(f"{n} ({LAYERS[_layer(n)][0]})" for n in upward))


def test_no_import_circles():
    done, on_path = set(), []

    def visit(module):
        if module in on_path:
            cycle = on_path[on_path.index(module):] + [module]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if module in done:
            return
        on_path.append(module)
        for imported in sorted(GRAPH[module]):
            # A package's __init__ runs before its submodules; importing the parent package from a
            # submodule (``from .. import x``) resolves to x itself above, so no false circles.
            visit(imported)
        on_path.pop()
        done.add(module)

    for module in sorted(MODULES):
        visit(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == 1))
def test_reference_imports_only_reference_torch_numpy_stdlib(module):
    foreign = set()
    for name in _imports(module):
        top = name.split(".")[0]
        if top == "ganops":
            if not (name == "ganops.ref" or name.startswith("ganops.ref.")):
                foreign.add(name)
        elif top not in REF_THIRD_PARTY and top not in sys.stdlib_module_names:
            foreign.add(name)
    assert not foreign, f"{module} imports {sorted(foreign)}"


def _heavy_after(statement: str):
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(filter(None, out.stdout.strip().split(",")))


def test_import_ganops_pulls_in_no_heavy_dependency():
    """``import ganops`` adds none of the heavy packages to what ``import torch`` already loads (torch
    itself imports tqdm)."""
    added = _heavy_after("import ganops") - _heavy_after("import torch")
    assert not added, f"import ganops imported {sorted(added)}"
