"""Packaging for two kinds of users (issue #28, item 5).

* ``import ganops`` and a call of every public op import torch and numpy only (Triton when present):
  never the trainer's dependencies, never ``ganops_models``. CI also runs this file in a venv that
  holds only torch, numpy and pytest (``.ci/run``, "the kernels alone").
* The core dependencies of pyproject.toml are what ``python -m ganops_models.train`` imports; the
  curation and video extras stay out of the core, and ``dev`` (the README's install) includes them.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Import names that `import ganops` must not load, and why they would be wrong there.
TRAINER_ONLY = ("scipy", "PIL", "tqdm", "tensorboard", "sklearn", "imagehash", "imageio_ffmpeg", "ganops_models")

# What the trainer imports (module level, or when a run starts) -> its distribution on PyPI.
# Keep in step with ganops_models: test_trainer_imports_are_core_dependencies finds new ones.
TRAINER_IMPORTS = {
    "torch": "torch",
    "numpy": "numpy",
    "scipy": "scipy",
    "PIL": "pillow",
    "tqdm": "tqdm",
    "tensorboard": "tensorboard",   # torch.utils.tensorboard, when a run starts
}
EXTRAS = {
    "curation": {"scikit-learn", "imagehash"},   # dataset_tool --dedupe, cluster
    "video": {"imageio-ffmpeg"},                 # video ... --out x.mp4
    "explore": {"starlette", "uvicorn"},         # explore (the live page)
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str):
    """('name', {'extra', ...}) of a requirement string such as 'ganops[curation,video]' or 'torch>=2.4'."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    assert m, req
    return _norm(m.group(1)), {_norm(e) for e in (m.group(2) or "").split(",") if e.strip()}


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _expanded(project, requirements):
    """Distribution names of ``requirements``, with the project's own extras (``ganops[x]``) expanded."""
    out = set()
    for req in requirements:
        name, extras = _req_name(req)
        if name == _norm(project["name"]):
            for extra in extras:
                out |= _expanded(project, project["optional-dependencies"][extra])
        else:
            out.add(name)
    return out


def _run(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GANOPS_IMPL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Prepended to the code run in the subprocesses: records each top-level module that a file of this
# repository's packages imports itself (the nearest frame outside importlib), so transitive imports of other
# packages (numpy.f2py importing charset_normalizer, torch importing tqdm) do not count.
RECORDER = r"""
import json, os, sys
ROOT = %r
OWN = tuple(os.path.join(ROOT, package) + os.sep for package in ("ganops", "ganops_models"))
direct = {}
class _Recorder:
    def find_spec(self, name, path=None, target=None):
        if "." not in name:
            f = sys._getframe(1)
            while f is not None and (f.f_code.co_filename.startswith("<frozen") or "importlib" in f.f_code.co_filename):
                f = f.f_back
            if f is not None and f.f_code.co_filename.startswith(OWN):
                direct.setdefault(name, os.path.relpath(f.f_code.co_filename, ROOT))
        return None
sys.meta_path.insert(0, _Recorder())
""" % ROOT

CALL_EVERY_OP = RECORDER + r"""
import torch, numpy
try:
    import triton
except ImportError:
    pass
before = set(sys.modules)
import ganops
from ganops.compat import rosinality, stylegan2_ada   # the drop-in APIs

x = torch.randn(2, 3, 8, 8)
f = ganops.setup_filter([1, 3, 3, 1])
ganops.upfirdn2d(x, f, up=2, padding=2)
ganops.upsample2d(x, f)
ganops.downsample2d(x, f)
ganops.filter2d(x, f)
ganops.bias_act(x, torch.randn(3), act="lrelu")
ganops.nn.BiasAct(3, act="lrelu")(x)
ganops.conv2d_resample(x, torch.randn(4, 3, 3, 3), f=f, up=2, padding=1)
ganops.modulated_conv2d(x, torch.randn(4, 3, 3, 3), torch.randn(2, 3), padding=1)
ganops.grid_sample(x, torch.rand(2, 4, 4, 2) * 2 - 1)
ganops.filtered_lrelu(x, f, f, torch.randn(3), up=2, down=2, padding=3)
ganops.sum_squares(x)
real = x.clone().requires_grad_(True)
ganops.r1_penalty(real, (real * 2).sum(dim=[1, 2, 3]), gamma=1.0)
ws = torch.randn(2, 4, 8, requires_grad=True)
ganops.path_length_penalty(ws.sum(dim=2).reshape(2, 1, 2, 2).expand(2, 3, 2, 2), ws, pl_mean=torch.zeros([]))
ganops.gradient_penalty(lambda t: t.mean(dim=[1, 2, 3]), x, x.flip(0))
with ganops.no_weight_gradients():
    pass
new = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print(json.dumps({"new": new, "direct": direct}))
"""


def test_import_ganops_loads_no_trainer_dependency():
    """`import ganops` and one call of every public op on small CPU tensors load none of the trainer's
    dependencies (nor ganops_models): the kernels work in an environment that has nothing else."""
    result = _run(CALL_EVERY_OP)
    wrong = sorted(set(TRAINER_ONLY) & set(result["new"]))
    assert not wrong, f"import ganops / its ops loaded {wrong}: ganops may import torch, numpy and triton only"
    stdlib = set(sys.stdlib_module_names)
    direct = {m: where for m, where in result["direct"].items()
              if m not in stdlib and not m.startswith("_") and m not in ("ganops", "torch", "numpy", "triton")}
    assert not direct, f"ganops imports {direct} (module: the file importing it): torch, numpy and triton only"


def test_core_dependencies_are_what_the_trainer_imports():
    project = _project()
    core = _expanded(project, project["dependencies"])
    missing = sorted(set(TRAINER_IMPORTS.values()) - core)
    assert not missing, f"python -m ganops_models.train imports {missing}; add them to [project] dependencies"
    for extra, dists in EXTRAS.items():
        assert not dists & core, f"{sorted(dists & core)} belong to the {extra!r} extra, not to the core"


def test_extras_and_dev():
    """The optional features' extras exist, and `pip install -e ".[dev]"` (the README's install)
    installs them, so every documented command works after it."""
    project = _project()
    extras = project["optional-dependencies"]
    for extra, dists in EXTRAS.items():
        assert dists <= _expanded(project, extras[extra]), extra
    dev = _expanded(project, extras["dev"])
    for extra, dists in EXTRAS.items():
        assert dists <= dev, f"dev must include the {extra!r} extra ({sorted(dists - dev)} missing)"
    assert {"pytest", "pytest-benchmark", "ninja"} <= dev


TRAINER_MODULES = RECORDER + r"""
import ganops_models.train
print(json.dumps(direct))
"""


def test_trainer_imports_are_core_dependencies():
    """Every third-party module that the trainer's own files import when `python -m ganops_models.train`
    starts is in TRAINER_IMPORTS, whose distributions are core dependencies (test above): a new
    dependency of the trainer must be added to both. Runs where the trainer's dependencies are installed."""
    for name in ("PIL", "scipy", "tqdm"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed here (the kernels-only environment)")
    direct = _run(TRAINER_MODULES)
    stdlib = set(sys.stdlib_module_names)
    third_party = {m: where for m, where in direct.items()
                   if m not in stdlib and not m.startswith("_") and m not in ("ganops", "ganops_models", "triton")}
    assert "PIL" in third_party, direct   # the recorder sees the trainer's own imports
    unknown = {m: where for m, where in third_party.items() if m not in TRAINER_IMPORTS}
    assert not unknown, (f"python -m ganops_models.train imports {unknown} (module: the file importing it) at start-up: "
                         f"add its distribution to pyproject.toml's dependencies and to TRAINER_IMPORTS here")
