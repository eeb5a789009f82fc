"""How many Triton kernel variants a StyleGAN2 training configuration compiles (JIT volume).

    python -m benchmarks.jit_variants [--cfg tiny paper256 stylegan2] [--arch 90] [--precision bf16]

Runs one step of each training phase (Gmain, Greg, Dmain, Dreg; without ADA, whose parameter
sampling reads tensor values, which fake tensors do not have) of the configuration's G and D on fake CUDA tensors (``FakeTensorMode``: no GPU, no memory) with every op
forced to Triton. Each Triton launch is stopped before it compiles and keyed as Triton's JIT cache
keys it (every argument's specialisation: dtype, divisibility by 16, == 1; the constexprs; the
launch options), so a kernel's count is the number of compilations a fresh process does on its first
training steps. Prints one row per configuration and kernel and the total.
"""
import argparse
import contextlib
import dataclasses
import os
from typing import Dict, Iterator, List

CONFIGS = {"tiny": ("tiny", 32), "paper256": ("paper256", 256), "stylegan2": ("stylegan2", 1024)}


@contextlib.contextmanager
def fake_triton_ops() -> Iterator[None]:
    """Inside: the fake (meta) implementation of every ganops Triton custom op is its real one, so
    under FakeTensorMode the launchers run on fake tensors up to the kernel launch."""
    import importlib
    import pkgutil

    import ganops.ops
    from torch._library.custom_ops import OPDEFS

    for info in pkgutil.iter_modules(ganops.ops.__path__):  # every op module, so every family's ops are registered
        importlib.import_module(f"{ganops.ops.__name__}.{info.name}")

    ops = [op for name, op in OPDEFS.items() if name.startswith("ganops::") and name.endswith("_triton")]
    saved = [op._abstract_fn for op in ops]
    for op in ops:
        op._abstract_fn = op._init_fn
    try:
        yield
    finally:
        for op, fn in zip(ops, saved):
            op._abstract_fn = fn


@dataclasses.dataclass(frozen=True)
class Launch:
    """One intercepted launch: the kernel, its JIT-cache key and its constexpr arguments."""
    kernel: str
    key: str
    constexprs: Dict[str, object]


@contextlib.contextmanager
def recorded_launches(arch: int = 90) -> Iterator[List[Launch]]:
    """Inside: launching any ganops Triton kernel appends a :class:`Launch` (keyed for target
    sm_<arch>) to the yielded list and returns without compiling or running. Works for compiled-mode
    and interpreter-mode (TRITON_INTERPRET=1) kernels alike."""
    import importlib
    import pkgutil

    import ganops.triton_kernels as package
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction, create_function_from_signature

    backend = make_backend(GPUTarget("cuda", arch, 32))
    launches: List[Launch] = []

    class Recorder:
        def __init__(self, kernel):
            if isinstance(kernel, InterpretedFunction):  # the same function and specialisation options
                options = ("do_not_specialize", "do_not_specialize_on_alignment")
                kernel = JITFunction(kernel.fn, **{k: kernel.kwargs.get(k) for k in options})
            self.kernel = kernel
            self.binder = create_function_from_signature(kernel.signature, kernel.params, backend)

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                bound, specialization, options = self.binder(*args, **kwargs)
                constexprs = {name: bound[name] for name, spec in zip(bound, specialization) if spec[0] == "constexpr"}
                launches.append(Launch(self.kernel.__name__, f"{specialization} {options}", constexprs))
            return launch

    patched = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in list(vars(module).items()):
            if isinstance(value, (JITFunction, InterpretedFunction)) and name.endswith("_kernel"):
                patched.append((module, name, value))
                setattr(module, name, Recorder(value))
    try:
        yield launches
    finally:
        for module, name, value in patched:
            setattr(module, name, value)


@contextlib.contextmanager
def _concrete_filters() -> Iterator[None]:
    """Inside: ganops.setup_filter (whose normalisation reads the filter's sum) runs on real CPU
    tensors, its result moved to the requested or default device (a fake tensor under FakeTensorMode)."""
    import torch
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    import ganops
    from ganops.ops import upfirdn2d

    original = upfirdn2d.setup_filter

    def setup_filter(f, device=None, **kwargs):
        with unset_fake_temporarily(), torch.device("cpu"):
            f = original(f, device="cpu", **kwargs)
        return f.to(torch.get_default_device() if device is None else device)  # where .to(device) would put it

    ganops.setup_filter = upfirdn2d.setup_filter = setup_filter
    try:
        yield
    finally:
        ganops.setup_filter = upfirdn2d.setup_filter = original


@contextlib.contextmanager
def cpu_fakes_posing_as_cuda() -> Iterator[None]:
    """Inside: fake tensors live on the CPU (autograd's engine cannot run CUDA-device backward
    without a driver) but report ``is_cuda`` True, so the launchers pick their GPU tiles and modes;
    every op is forced to Triton, which the registry accepts for CPU tensors under TRITON_INTERPRET
    (read per call; the kernels were compiled-mode JIT functions when imported)."""
    from torch._subclasses.fake_tensor import FakeTensor

    saved_env = {k: os.environ.get(k) for k in ("GANOPS_IMPL", "TRITON_INTERPRET")}
    os.environ.update(GANOPS_IMPL="triton", TRITON_INTERPRET="1")
    FakeTensor.is_cuda = property(lambda self: True)
    try:
        yield
    finally:
        del FakeTensor.is_cuda
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def count_variants(cfg: str, arch: int = 90, precision: str = None) -> Dict[str, int]:
    """{kernel name: distinct compilations} for one step of every phase of StyleGAN2 preset ``cfg``
    (a key of CONFIGS) at its resolution; ``precision`` overrides the preset's (fp16 / bf16 / fp32)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ganops_models.models.stylegan2.loss import StyleGAN2Loss
    from ganops_models.models.registry import PRESETS, get_recipe
    from ganops_models.training.recipe import DataInfo
    from ganops_models.models.stylegan2.recipe import build_networks

    preset, resolution = CONFIGS[cfg]
    values = PRESETS[preset].values((resolution, resolution), 1)
    values.update(resolution=(resolution, resolution), device="cuda", precision=precision or "fp16")
    opts = get_recipe(PRESETS[preset].model).Options(**values)
    with recorded_launches(arch) as launches, fake_triton_ops(), _concrete_filters(), \
            FakeTensorMode(allow_non_fake_inputs=True), cpu_fakes_posing_as_cuda():
        # The networks are built as for CUDA (channels_last low-precision blocks); their final
        # .to(device) is skipped: nn.Module.to cannot swap fake parameters.
        module_to, torch.nn.Module.to = torch.nn.Module.to, lambda module, *args, **kwargs: module
        try:
            G, D = build_networks(opts, DataInfo((resolution, resolution)), torch.device("cuda"))
        finally:
            torch.nn.Module.to = module_to
        loss = StyleGAN2Loss(G, D, augment_pipe=None, r1_gamma=opts.gamma, pl_weight=opts.pl_weight,
                             style_mixing_prob=opts.style_mixing)
        batch = max(opts.batch // 8, 2)
        reals = torch.rand(batch, 3, resolution, resolution)
        labels = torch.zeros(batch, 0)
        z = torch.randn(batch, opts.z_dim)
        for phase in ("Gmain", "Greg", "Dmain", "Dreg"):
            module = D if phase.startswith("D") else G
            module.requires_grad_(True)
            loss.accumulate_gradients(phase, reals, labels, z, labels, gain=1)
            module.requires_grad_(False)
    keys: Dict[str, set] = {}
    for launch in launches:
        keys.setdefault(launch.kernel, set()).add(launch.key)
    return {name: len(variants) for name, variants in sorted(keys.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--arch", type=int, default=90, help="compute capability (90: sm_90)")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None,
                        help="override the preset's low precision (default: the preset's)")
    args = parser.parse_args(argv)
    os.environ.pop("TRITON_INTERPRET", None)
    for cfg in args.cfg:
        counts = count_variants(cfg, args.arch, args.precision)
        for name, count in counts.items():
            print(f"{cfg:10s} {name:32s} {count:4d}")
        print(f"{cfg:10s} {'total':32s} {sum(counts.values()):4d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
