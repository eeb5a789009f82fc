"""Export a network's generator for other runtimes: ``--format onnx`` (the one format for now).

``python -m ganops_models.export --network X --format onnx --out G.onnx`` writes the EMA generator of
anything ``--network`` takes (checkpoint, run folder, ``latest``, safetensors network, NVIDIA pickle) as
an ONNX graph mapping the input ``z`` [N, z_dim] (and ``c`` [N, c_dim] for a conditional network) to
``img`` [N, C, H, W] in [-1, 1], with a dynamic batch axis N. The ganops ops are traced through their
pure-PyTorch reference (``GANOPS_IMPL=ref`` while exporting), so the graph holds standard ONNX
operators only. torch's dynamo exporter (``torch.onnx.export(dynamo=True)``, needs ``onnxscript``)
writes it at opset :data:`OPSET`. Style-based generators use ``noise_mode='const'`` (their stored
noise) and ``--trunc`` (psi, default 1) is baked in; FastGAN's noise injection (random in every call)
is left out, as its ``noise_mode='none'``, and its batch norm with batch statistics (how it samples) is
written as plain mean/variance operators (:class:`BatchStatisticsNorm`).

The file is then checked inside the command: ``onnx.checker.check_model`` (full check) and, on
:data:`CHECK_BATCH` seeded latents, onnx's reference evaluator against the network's own eager
sampling (``LoadedNetwork.sample``); the
largest absolute difference is reported and one above ``--tolerance`` is an error (exit 2; the file
is not kept). Needs the ``onnx`` extra (``pip install 'ganops[onnx]'``).
"""
import contextlib
import os
import tempfile
from typing import Optional

import numpy as np
import torch

import ganops
from ganops_models.errors import CheckpointError
from ganops_models.extras import require
from ganops_models.files import atomic_write
from ganops_models.nn.layers import batch_norm_statistics
from ganops_models.network_loader import LoadedNetwork, load_network, seed_latents
from ganops_models.tools.cli import ArgumentParser, run_command

FORMATS = ("onnx",)
OPSET = 18
CHECK_BATCH = 3          # differs from the traced batch (2), so the dynamic batch axis is checked too
TOLERANCE = 1e-4


class ExportedGenerator(torch.nn.Module):
    """(z[, c]) -> images of ``net``'s EMA generator, as exported (constant noise, fixed psi)."""

    def __init__(self, net: LoadedNetwork, truncation_psi: float = 1.0):
        super().__init__()
        self.style_based = net.has_w_space
        self.c_dim, self.psi = net.c_dim, truncation_psi
        # FastGAN, DCGAN, ProGAN: the generator inside the recipe's EvalGenerator, whose batch-norm mode
        # (batch or running statistics) is set around the export by modes()
        self.G = net.G_ema if self.style_based else net.G_ema.G
        self.batch_statistics = getattr(net.G_ema, "batch_statistics", False)
        if not self.style_based and truncation_psi != 1:
            raise CheckpointError(f"--trunc: {net.kind} has no truncation (got {truncation_psi}); use 1")

    @contextlib.contextmanager
    def modes(self):
        """Within the block the generator computes as exported: batch norm as the recipe samples (with
        batch statistics: :class:`BatchStatisticsNorm` in place of each batch-norm layer), no FastGAN
        noise injection."""
        layers = [m for m in self.G.modules() if hasattr(m, "noise_enabled")]
        norms = [(parent, name, child) for parent in self.G.modules() for name, child in parent.named_children()
                 if isinstance(child, torch.nn.modules.batchnorm._BatchNorm)] if self.batch_statistics else []
        for m in layers:
            m.noise_enabled = False
        for parent, name, child in norms:
            setattr(parent, name, BatchStatisticsNorm(child))
        try:
            with batch_norm_statistics(self.G, False):
                yield
        finally:
            for m in layers:
                m.noise_enabled = True
            for parent, name, child in norms:
                setattr(parent, name, child)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.style_based:
            c = c if c is not None else z.new_zeros([z.shape[0], 0])
            return self.G(z, c, truncation_psi=self.psi, noise_mode="const")
        out = self.G(z)
        return out[0] if isinstance(out, tuple) else out


class BatchStatisticsNorm(torch.nn.Module):
    """A batch-norm layer normalising with the statistics of each batch, written in plain tensor ops:
    what the layer computes in training mode (biased variance), without updating its running
    statistics, which the exporters do not translate faithfully."""

    def __init__(self, norm: torch.nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.ndim)]
        shape = [1, -1] + [1] * (x.ndim - 2)
        mean = x.mean(dims, keepdim=True)
        var = (x - mean).square().mean(dims, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.norm.eps)
        if self.norm.affine:
            y = y * self.norm.weight.reshape(shape) + self.norm.bias.reshape(shape)
        return y


def _inputs(net: LoadedNetwork, n: int, seed: int):
    z = seed_latents(list(range(seed, seed + n)), net.z_dim)
    c = torch.eye(net.c_dim)[torch.arange(n) % net.c_dim] if net.c_dim else None
    return (z,) if c is None else (z, c)


def export_onnx(net: LoadedNetwork, out: str, truncation_psi: float = 1.0, tolerance: float = TOLERANCE) -> float:
    """Write ``net``'s generator to ``out`` as ONNX (atomically) and check it (see the module docstring);
    returns the largest absolute difference between onnx's reference evaluator and eager."""
    onnx = require("onnx", "onnx", "--format onnx")
    require("onnxscript", "onnx", "--format onnx (torch's ONNX exporter)")
    from onnx.reference import ReferenceEvaluator
    model = ExportedGenerator(net, truncation_psi).eval()
    names = ["z"] if net.c_dim == 0 else ["z", "c"]
    batch = torch.export.Dim("batch", min=1, max=4096)
    inputs = _inputs(net, CHECK_BATCH, 1000)
    with ganops.forced_impl("ref"):                 # the network's own sampling path, before the export traces it
        expected = net.sample(inputs[0], inputs[1] if net.c_dim else None, truncation_psi=truncation_psi,
                              noise_mode="const" if model.style_based else "none", batch=CHECK_BATCH).numpy()
    with ganops.forced_impl("ref"), model.modes(), torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        traced = os.path.join(tmp, "G.onnx")
        try:
            torch.onnx.export(model, _inputs(net, 2, 0), traced, input_names=names, output_names=["img"],
                              dynamic_shapes={name: {0: batch} for name in names}, opset_version=OPSET,
                              dynamo=True, external_data=False, verbose=False)
        except Exception as e:   # an op the exporter cannot translate: say which network and why
            detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"cannot export the generator of {net.describe()} to ONNX: {detail}") from None
        proto = onnx.load(traced)
        onnx.checker.check_model(proto, full_check=True)
        got = ReferenceEvaluator(proto).run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
        diff = float(np.abs(got - expected).max())
        if not diff <= tolerance:
            raise CheckpointError(f"the exported generator of {net.describe()} differs from eager by {diff:.3g} "
                                  f"(> --tolerance {tolerance:g}) under onnx's reference evaluator; not written")
        with atomic_write(out) as f, open(traced, "rb") as src:
            f.write(src.read())
    return diff


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m ganops_models.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="checkpoint, run folder, 'latest', .safetensors or NVIDIA .pkl")
    p.add_argument("--format", required=True, choices=FORMATS, help="file format to write")
    p.add_argument("--out", required=True, help="file to write (e.g. G.onnx)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi baked into the graph (style-based "
                   "generators; default 1: none)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest allowed absolute difference between "
                   f"onnx's reference evaluator and eager (default {TOLERANCE:g})")
    args = p.parse_args(argv)

    def run() -> int:
        net = load_network(args.network, "cpu")
        diff = export_onnx(net, args.out, args.trunc, args.tolerance)
        print(f"wrote {args.out} from {net.describe()}: inputs {'z' if net.c_dim == 0 else 'z, c'} -> img "
              f"[N, {net.img_channels}, {net.resolution[0]}, {net.resolution[1]}], opset {OPSET}; checked with "
              f"onnx.checker and onnx's reference evaluator: max abs diff {diff:.3g} vs eager")
        return 0
    return run_command(run)
