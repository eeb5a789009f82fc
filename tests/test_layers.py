"""The house of ganops_models: every module sits on one layer (docs/architecture.md), imports only
modules of its own or lower layers, and no modules import each other in a circle. Read from the
source with ``ast``, so an import inside a function counts too."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (module prefix, layer), most specific prefix first; lower layers never import higher ones.
LAYERS = [
    ("ganops_models.errors", 0), ("ganops_models.files", 0), ("ganops_models.extras", 0),
    ("ganops_models.images", 1), ("ganops_models.formats", 1),
    ("ganops_models.nn", 2), ("ganops_models.augment", 2), ("ganops_models.data", 2),
    ("ganops_models.metrics.__main__", 10), ("ganops_models.metrics", 3),
    ("ganops_models.curation", 4),
    ("ganops_models.training", 5),
    ("ganops_models.models.registry", 7), ("ganops_models.models", 6),
    ("ganops_models.network_loader", 8),
    ("ganops_models.tools", 9),
    ("ganops_models", 10),      # the package face and the `python -m ganops_models.<tool>` entry modules
]


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} has no layer in LAYERS")


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: pathlib.Path, package: str):
    """Absolute names of the ganops/ganops_models modules that ``path`` imports (a ``from X import y``
    counts as X.y when that is a module of the package, else as X)."""
    module = module_name(path)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


MODULES = {module_name(p) for p in (ROOT / "ganops_models").rglob("*.py")}
EDGES = {module_name(p): {m for m in imports_of(p, "ganops_models") if m in MODULES and m != module_name(p)}
         for p in sorted((ROOT / "ganops_models").rglob("*.py"))}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_import_runs_up_a_layer():
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
              for a, targets in sorted(EDGES.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]
    assert not upward, "\n".join(upward)


def _circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _circles(EDGES) == []


def test_the_circle_finder_finds_circles():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_kernels_never_import_the_trainer():
    trainer = [f"{module_name(p)} imports {m}" for p in (ROOT / "ganops").rglob("*.py")
               for m in imports_of(p, "ganops") if m.split(".")[0] == "ganops_models"]
    assert not trainer, trainer


@pytest.mark.parametrize("tool", ["train", "generate", "video", "project", "style_mixing", "convert", "dataset_tool",
                                  "cluster", "explore"])
def test_every_command_is_a_thin_entry_module(tool):
    """``python -m ganops_models.<tool>`` keeps working: the entry module only hands over to tools/."""
    assert EDGES[f"ganops_models.{tool}"] == {f"ganops_models.tools.{tool}"}
