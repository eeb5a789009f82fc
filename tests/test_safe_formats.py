"""Safe formats out (issue #33, item 5): safetensors networks (convert --out X.safetensors, load_network,
hostile files) and the ONNX export of generators checked against eager."""
import json
import struct
import sys

import numpy as np
import pytest
import torch

from ganops_models import load_network
from ganops_models.errors import CheckpointError
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.formats import safetensors as st
from ganops_models.models.registry import RECIPES
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.tools import convert, export, generate

pytestmark = pytest.mark.usefixtures("one_intraop_thread")

# tiny networks of every model (a few thousand parameters each)
TINY = {
    "stylegan2": (16, dict(cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, mbstd_group=2, aug="ada",
                           p=0.3)),
    "stylegan3": (16, dict(cbase=256, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, mbstd_group=2,
                           aug="noaug")),
    "fastgan": (64, dict(z_dim=16, aug="diffaug", ngf=4, ndf=4, cfg="fastgan-lite")),
    "dcgan": (32, dict(z_dim=8, ngf=4, ndf=4, aug="noaug")),
    "progan": (16, dict(cbase=64, cmax=8, z_dim=8, aug="noaug")),
}


def _checkpoint(path, model, seed=0):
    """A ganops checkpoint of a tiny ``model`` whose weights are all perturbed (every tensor matters)."""
    res, values = TINY[model]
    cls = RECIPES[model]
    opts = cls.Options(device="cpu", precision="fp32", batch=2, resolution=(res, res), seed=seed, **values)
    recipe = cls(opts, DataInfo((res, res)), torch.device("cpu"), DistInfo())
    with torch.no_grad():
        for net in (recipe.G, recipe.D, recipe.G_ema):
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    data = {"resolution": [res, res], "num_channels": 3, "label_dim": 0, "name": "toy"}
    ckpt_lib.save_checkpoint(str(path), model=model, arch=recipe.arch_spec(), options=opts.to_dict(), data=data,
                             progress={"cur_nimg": 8, "step": 4, "tick": 1}, state=recipe.state_dict())
    return str(path)


@pytest.fixture(scope="module")
def sg2(tmp_path_factory):
    """(checkpoint, its safetensors network) of a tiny StyleGAN2."""
    folder = tmp_path_factory.mktemp("sg2")
    pt = _checkpoint(folder / "checkpoint-000000.008.pt", "stylegan2")
    assert convert.main(["--network", pt, "--out", str(folder / "G.safetensors")]) == 0
    return pt, str(folder / "G.safetensors")


# --- safetensors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model", sorted(TINY))
def test_every_model_round_trips_bit_identically(tmp_path, model, capsys):
    pt = _checkpoint(tmp_path / "checkpoint-000000.008.pt", model)
    out = tmp_path / "net.safetensors"
    assert convert.main(["--network", str(tmp_path), "--out", str(out)]) == 0     # a run folder works too
    assert "wrote" in capsys.readouterr().out
    a, b = load_network(pt), load_network(str(out))
    assert (b.source, b.kind, b.z_dim, b.resolution, b.augment_p) == ("safetensors", model, a.z_dim, a.resolution,
                                                                      a.augment_p)
    for name in ("G", "D", "G_ema"):          # every parameter and buffer of the three networks
        sa, sb = getattr(a.recipe, name).state_dict(), getattr(b.recipe, name).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    z = torch.randn(3, a.z_dim, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.sample(z), b.sample(z))
    with open(out, "rb") as f:                # no pickle anywhere: a JSON header and raw bytes
        head = f.read(9)
    assert head[8:9] == b"{" and b"\x80" != head[:1]


def test_shared_filters_are_written_once_and_shared_again(sg2):
    _, path = sg2
    header, raw = st.read_header(open(path, "rb").read(), path)
    aliases = json.loads(raw[st.ALIASES])
    assert aliases and all(alias not in header and target in header for alias, target in aliases.items())
    assert "G.synthesis.blocks.1.conv0.resample_filter" in header
    assert set(json.loads(raw["options"])).isdisjoint(convert.LOCAL_OPTIONS)     # no local paths leave the machine
    block = load_network(path).G.synthesis.blocks[1]
    assert block.resample_filter.data_ptr() == block.conv0.resample_filter.data_ptr() == \
        block.conv1.resample_filter.data_ptr()


def test_generate_takes_a_safetensors_network(sg2, tmp_path):
    pt, path = sg2
    for spec, outdir in ((pt, "a"), (path, "b")):
        assert generate.main(["--network", spec, "--seeds", "3-4", "--outdir", str(tmp_path / outdir)]) == 0
    for name in ("seed0003.png", "seed0004.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_stylegan2_pickle_converts_to_safetensors(tmp_path):
    import nvidia_pickles as nv
    from ganops_models.models.stylegan2.network import Discriminator, Generator
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, resolution=16, mapping_layers=2, channel_base=128, channel_max=16,
                  precision="fp32")
    D = Discriminator(c_dim=0, resolution=16, channel_base=128, channel_max=16, precision="fp32")
    pkl = nv.write_snapshot(tmp_path / "net.pkl", G, D, G, nv.g_kwargs(G, 128, 16), nv.d_kwargs(D, 128, 16),
                            tmp_path / "marker", 0.25)
    assert convert.main(["--network", str(pkl), "--out", str(tmp_path / "net.safetensors")]) == 0
    a, b = load_network(str(pkl)), load_network(str(tmp_path / "net.safetensors"))
    z = torch.randn(2, 8)
    assert torch.equal(a.sample(z), b.sample(z)) and b.augment_p == pytest.approx(0.25)


def _rewrite(path, out, tensors=None, metadata=None, drop=()):
    """A safetensors network written again with some tensors or metadata entries changed."""
    t, m = st.load(path)
    t = {k: v for k, v in {**t, **(tensors or {})}.items() if k not in drop}
    m = {k: v for k, v in {**m, **(metadata or {})}.items() if k not in drop}
    t = {k: v.clone() for k, v in t.items()}      # aliases become plain copies (still a valid file)
    st.save(str(out), t, m)
    return str(out)


@pytest.mark.parametrize("change,message", [
    (dict(metadata={"model": "nosuch"}), "'nosuch' model, which ganops_models does not know"),
    (dict(metadata={"options": "{not json"}), "metadata entry 'options' is not JSON"),
    (dict(metadata={"options": "[1]"}), "'options' is a JSON list, expected an object"),
    (dict(metadata={"options": json.dumps({"cbase": "64"})}), "option 'cbase' is '64'"),
    (dict(metadata={"options": json.dumps({"cmax": 65536})}), "cmax=65536 is out of bounds"),
    (dict(metadata={"format": "other-v9"}), "format 'other-v9', expected 'ganops-network-v1'"),
    (dict(metadata={"extra": "1"}), r"unknown \['extra'\]"),
    (dict(drop=("data",)), r"missing \['data'\]"),
    (dict(metadata={"augment_p": "7"}), "augment_p is 7"),
    (dict(drop=("G.mapping.w_avg",)), "missing G.mapping.w_avg"),
    (dict(tensors={"G.extra": torch.zeros(2)}), "unexpected G.extra"),
    (dict(tensors={"D.b4.fc.weight": torch.zeros(3, 3)}), r"D.b4.fc.weight: float32 \[3, 3\] in the file"),
    (dict(tensors={"G_ema.mapping.w_avg": torch.zeros(8, dtype=torch.float64)}),
     "float64 \\[8\\] in the file, float32"),
    (dict(tensors={"G.mapping.w_avg": torch.full([8], float("nan"))}), "non-finite weights .* G.mapping.w_avg"),
])
def test_bad_metadata_and_tensors_are_named(sg2, tmp_path, change, message):
    _, path = sg2
    bad = _rewrite(path, tmp_path / "bad.safetensors", **change)
    with pytest.raises(CheckpointError, match=message):
        load_network(bad)


def _header_file(tmp_path, header: bytes, size=None, body=b""):
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(header) if size is None else size) + header + body)
    return str(path)


@pytest.mark.parametrize("header,size,body,message", [
    (b"", 2 ** 40, b"", "header would be 1,099,511,627,776 bytes"),
    (b"{}", 100, b"", "runs past the end of the file"),
    (b"[1, 2]", None, b"", "header is a JSON list"),
    (b"\xff\xfe{", None, b"", "header is not JSON"),
    (b"[" * 100_000, None, b"", "header is not JSON"),
    (b'{"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}', None, b"\0" * 4, "dtype 'F99'"),
    (b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', None, b"\0" * 4, "shape \\[-1\\]"),
    (b'{"a": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4]}}', None, b"\0" * 4,
     "needs 4,000,000 bytes"),
    (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4000]}}', None, b"\0" * 4, "outside the 4 bytes"),
    (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', None, b"\0" * 8, "gaps or overlaps"),
    (b'{"__metadata__": {"a": 1}}', None, b"", "not a map of strings to strings"),
])
def test_hostile_headers_are_refused_before_anything_is_read(tmp_path, header, size, body, message):
    with pytest.raises(CheckpointError, match=message):
        load_network(_header_file(tmp_path, header, size, body))


def test_truncated_and_mislabelled_files(sg2, tmp_path):
    _, path = sg2
    data = open(path, "rb").read()
    (tmp_path / "cut.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_network(str(tmp_path / "cut.safetensors"))
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="fewer than the 8"):
        load_network(str(tmp_path / "tiny.safetensors"))
    plain = _rewrite(path, tmp_path / "plain.safetensors", drop=("format", "model", "options", "data", "augment_p"))
    with pytest.raises(CheckpointError, match="missing .*write it with python -m ganops_models.convert"):
        load_network(plain)
    with pytest.raises(CheckpointError, match="is a safetensors network: weights only.*resumes from a checkpoint"):
        ckpt_lib.load_checkpoint(path)                                      # what train --resume X.safetensors says


# --- ONNX -----------------------------------------------------------------------------------------

def _check_onnx(out, net, n=5):
    """The exported graph passes onnx's checker and matches eager on a batch it was not traced with."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["z"] and [o.name for o in proto.graph.output] == ["img"]
    z = torch.randn(n, net.z_dim, generator=torch.Generator().manual_seed(5))
    got = ReferenceEvaluator(proto).run(None, {"z": z.numpy()})[0]
    assert got.shape == (n, 3, *net.resolution)
    return got, z


def test_stylegan2_exports_to_onnx_with_truncation(sg2, tmp_path, capsys):
    _, path = sg2
    out = tmp_path / "G.onnx"
    assert export.main(["--network", path, "--format", "onnx", "--out", str(out), "--trunc", "0.7"]) == 0
    assert "max abs diff" in capsys.readouterr().out
    net = load_network(path)
    got, z = _check_onnx(out, net)
    with torch.no_grad():
        expected = net.G_ema(z, torch.zeros(len(z), 0), truncation_psi=0.7, noise_mode="const")
    assert np.abs(got - expected.numpy()).max() < 1e-4
    assert not np.allclose(got, net.G_ema(z, torch.zeros(len(z), 0), noise_mode="const").detach().numpy(), atol=1e-3)


def test_dcgan_exports_and_a_bad_request_is_one_line(tmp_path, capsys):
    pt = _checkpoint(tmp_path / "checkpoint-000000.008.pt", "dcgan")
    out = tmp_path / "G.onnx"
    assert export.main(["--network", pt, "--format", "onnx", "--out", str(out)]) == 0
    net = load_network(pt)
    got, z = _check_onnx(out, net)
    assert np.abs(got - net.sample(z).numpy()).max() < 1e-4
    capsys.readouterr()
    assert export.main(["--network", pt, "--format", "onnx", "--out", str(tmp_path / "t.onnx"), "--trunc", "0.5"]) == 2
    assert "dcgan has no truncation" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()


@pytest.mark.parametrize("module,extra", [("safetensors", "safetensors"), ("onnx", "onnx"), ("onnxscript", "onnx")])
def test_a_missing_package_names_its_extra(sg2, tmp_path, monkeypatch, capsys, module, extra):
    pt, _ = sg2
    monkeypatch.setitem(sys.modules, module, None)       # import fails as if it were not installed
    monkeypatch.delitem(sys.modules, f"{module}.torch", raising=False)
    cmd = ((convert.main, [".safetensors"]) if module == "safetensors"
           else (export.main, [".onnx", "--format", "onnx"]))
    out = str(tmp_path / ("x" + cmd[1][0]))
    assert cmd[0](["--network", pt, "--out", out, *cmd[1][1:]]) == 2
    assert f"pip install 'ganops[{extra}]'" in capsys.readouterr().err


def test_fastgan_exports_with_batch_statistics(tmp_path):
    pt = _checkpoint(tmp_path / "checkpoint-000000.008.pt", "fastgan")
    out = tmp_path / "G.onnx"
    assert export.main(["--network", pt, "--format", "onnx", "--out", str(out)]) == 0
    net = load_network(pt)
    got, z = _check_onnx(out, net)
    assert net.recipe.sample_batch_statistics      # FastGAN samples with each batch's statistics ...
    assert np.abs(got - net.sample(z, noise_mode="none", batch=len(z)).numpy()).max() < 1e-4
    assert net.recipe.G_ema.training is False and all(    # ... and the export left the network as it was
        type(m).__name__ != "BatchStatisticsNorm" for m in net.recipe.G_ema.modules())
