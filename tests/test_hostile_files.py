"""Files from outside (issues #29, #35): every payload is built here, never committed. Each case checks
that the message names the problem, that nothing from the payload ran (no marker file) and, where
checkpoints are involved, that the last good checkpoint is intact."""
import contextlib
import errno
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

import nvidia_pickles as nv

from ganops_models import load_network
from ganops_models.errors import CheckpointError, CheckpointWriteError, UnsafePickleError
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.formats import limits
from ganops_models.formats.safe_pickle import PersistentRecord, _TENSOR
from ganops_models.models.stylegan2.network import Discriminator, Generator
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe
from ganops_models.network_loader import read_checkpoint
from ganops_models.tools import train
from ganops_models.training import loop
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CB, CM = 64, 8
pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.path.join(ROOT, "tests"))
    env.pop("TRITON_INTERPRET", None)
    return env


def _nets():
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, resolution=16, mapping_layers=2, channel_base=CB, channel_max=CM,
                  precision="fp32")
    D = Discriminator(c_dim=0, resolution=16, channel_base=CB, channel_max=CM, precision="fp32")
    return G.eval(), D.eval()


def _snapshot(path, g_changes=None):
    """A valid StyleGAN2-ADA snapshot of tiny networks; ``g_changes`` overrides G's kwargs (top level)."""
    G, D = _nets()
    g_kw = nv.g_kwargs(G, CB, CM)
    g_kw.update(g_changes or {})
    return nv.write_snapshot(path, G, D, G, g_kw, nv.d_kwargs(D, CB, CM), path.parent / "marker")


def _recipe():
    opts = StyleGAN2Options(batch=4, cbase=CB, cmax=CM, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                            device="cpu", aug="noaug", mbstd_group=2)
    return StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo()), opts


def _save(path, nimg=8, options=None, model="stylegan2", state=None):
    recipe, opts = _recipe()
    ckpt_lib.save_checkpoint(str(path), model=model, arch=recipe.arch_spec(),
                             options={**opts.to_dict(), **(options or {})},
                             data={"resolution": [16, 16], "num_channels": 3, "label_dim": 0, "name": "t"},
                             progress={"cur_nimg": nimg, "step": nimg // 4, "tick": 1},
                             state=recipe.state_dict() if state is None else state)
    return path


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


# --- the safe unpickler --------------------------------------------------------------------------------

@pytest.mark.parametrize("module,name,attribute", [
    ("torch_utils.persistence", "_reconstruct_persistent_obj", "state_dict"),   # the class PersistentRecord
    ("torch", "Tensor", "cls"),                                                  # a module-level token
])
def test_build_on_an_allowed_class_is_refused_and_later_loads_work(tmp_path, module, name, attribute):
    """GLOBAL <allowed class>; BUILD (None, {attribute: set}) would set an attribute of the class itself."""
    payload = (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"N}" + _unicode(attribute)
               + b"cbuiltins\nset\ns\x86b.")
    (tmp_path / "evil.pkl").write_bytes(payload)
    saved = {"state_dict": PersistentRecord.__dict__["state_dict"], "cls": _TENSOR.cls}
    try:
        with pytest.raises(UnsafePickleError, match=r"tries to set attributes of .*BUILD"):
            load_network(str(tmp_path / "evil.pkl"))
        assert PersistentRecord.__dict__["state_dict"] is saved["state_dict"] and _TENSOR.cls is torch.Tensor
        net = load_network(str(_snapshot(tmp_path / "good.pkl")))   # a later valid load in the same process
        assert net.z_dim == 8
    finally:   # on a loader that lets the BUILD through, do not break the other tests
        PersistentRecord.state_dict = saved["state_dict"]
        _TENSOR.cls = torch.Tensor


def _deep_list(levels: int) -> bytes:
    return b"]" * levels + b"a" * (levels - 1)


_PUT, _GET = b"r" + struct.pack("<I", 99999), b"j" + struct.pack("<I", 99999)   # a memo slot the file does not use


@pytest.mark.parametrize("payload,message", [
    (_deep_list(5000), "more than 100 levels deep"),
    (b"]" + _PUT + _GET + b"a", "refers to itself"),                               # a list that holds itself
    (b"]" + _PUT + b"0" + (_GET + _GET + b"\x86" + _PUT + b"0") * 40 + _GET,        # 2**40 uses of one list
     "more than 1,000,000 objects"),
], ids=["deep", "cycle", "exploding"])
def test_deep_cyclic_and_exploding_kwargs_are_refused(tmp_path, payload, message):
    marker = tmp_path / "marker"
    _snapshot(tmp_path / "base.pkl", {"z_dim": "DEEPMARK"})
    data = (tmp_path / "base.pkl").read_bytes()
    assert _unicode("DEEPMARK") in data
    (tmp_path / "deep.pkl").write_bytes(data.replace(_unicode("DEEPMARK"), payload))
    with pytest.raises(CheckpointError, match=message):
        load_network(str(tmp_path / "deep.pkl"))
    assert not marker.exists()


def _evil_torch_bytes(marker) -> bytes:
    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)
    buf = io.BytesIO()
    torch.save({"format": ckpt_lib.FORMAT, "x": Evil()}, buf)
    return buf.getvalue()


def test_disallowed_objects_in_torch_files_are_named_never_called_corrupt(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "checkpoint-000000.008.pt").write_bytes(_evil_torch_bytes(marker))
    with pytest.raises(UnsafePickleError) as e:
        load_network(str(tmp_path / "checkpoint-000000.008.pt"))
    assert "posix.system" in str(e.value) and "not allowed" in str(e.value)
    assert "corrupt" not in str(e.value) and "weights_only" not in str(e.value)

    class Wrapped:     # a storage of an NVIDIA pickle, as torch pickles them, holding the same file
        def __reduce__(self):
            return torch.storage._load_from_bytes, (_evil_torch_bytes(marker),)
    (tmp_path / "wrapped.pkl").write_bytes(pickle.dumps({"G": Wrapped(), "D": 1, "G_ema": 2}, protocol=2))
    with pytest.raises(UnsafePickleError) as e:
        load_network(str(tmp_path / "wrapped.pkl"))
    assert "posix.system" in str(e.value) and "wrapped.pkl" in str(e.value)
    assert "weights_only" not in str(e.value) and "corrupt" not in str(e.value)
    assert not marker.exists()


# --- settings from files, under a memory limit ---------------------------------------------------------

_LIMITED = textwrap.dedent("""
    import json, resource, sys
    import torch
    from ganops_models import load_network
    from ganops_models.errors import CheckpointError
    import ganops_models.models.registry
    size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + 2 ** 30, size + 2 ** 30))   # 1 GiB above the imports
    out = {}
    for path in sys.argv[1:]:
        try:
            load_network(path)
            out[path] = "loaded"
        except CheckpointError as e:
            out[path] = "CheckpointError: " + str(e)
        except BaseException as e:
            out[path] = "TRACEBACK " + type(e).__name__ + ": " + str(e)[:200]
    print(json.dumps(out))
""")


def test_huge_or_invalid_network_settings_are_refused_before_building(tmp_path):
    cases = {"channel_max.pkl": ({"synthesis_kwargs": {"channel_base": 2 ** 20, "channel_max": 65536}},
                                 "channel_max=65536 is out of bounds"),
             "z_dim.pkl": ({"z_dim": 2 ** 31}, "z_dim=2147483648 is out of bounds"),
             "resolution.pkl": ({"img_resolution": 65536}, "img_resolution=65536 is out of bounds"),
             "negative.pkl": ({"z_dim": -5}, "z_dim=-5 is out of bounds"),
             "text.pkl": ({"w_dim": "512"}, "w_dim is '512' .str., expected a whole number")}
    for name, (changes, _) in cases.items():
        _snapshot(tmp_path / name, changes)
    ckpt_cases = {"checkpoint-000000.008.pt": ({"cmax": 65536}, "options: cmax=65536 is out of bounds"),
                  "checkpoint-000000.012.pt": ({"z_dim": 2 ** 31}, "options: z_dim=2147483648 is out of bounds"),
                  "checkpoint-000000.016.pt": ({"cbase": 2 ** 20, "cmax": 2048, "resolution": [4096, 4096]},
                                               "about .* GiB .*refused before building")}
    for name, (options, _) in ckpt_cases.items():
        _save(tmp_path / name, options=options)
    paths = [str(tmp_path / n) for n in [*cases, *ckpt_cases]]
    proc = subprocess.run([sys.executable, "-c", _LIMITED, *paths], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for name, (_, message) in {**cases, **ckpt_cases}.items():
        got = results[str(tmp_path / name)]
        assert got.startswith("CheckpointError") and __import__("re").search(message, got), (name, got)
    assert not (tmp_path / "marker").exists()


def test_settings_bounds_and_the_machines_memory():
    limits.check_settings("G", {"resolution": 1024, "channel_base": 32768, "channel_max": 512, "w_dim": 512})
    with pytest.raises(CheckpointError, match=r"G: channel_max=4096 is out of bounds \(1 to 2048\)"):
        limits.check_settings("G", {"channel_max": 4096})
    with pytest.raises(CheckpointError, match="this machine's 1.0 GiB"):
        limits.check_settings("G", {"resolution": 1024, "channel_base": 2 ** 20, "channel_max": 2048},
                              memory=2 ** 30)
    with pytest.raises(CheckpointError, match="gives no channels at resolution 1024"):
        limits.check_settings("G", {"resolution": 1024, "channel_base": 512})


@pytest.mark.parametrize("change,message", [
    ({"model": "nosuch"}, "'nosuch' model, which ganops_models does not know"),
    ({"options": {"cbase": "64"}}, "cbase'? is '64'"),
    ({"options": {"glr": [1]}}, "option 'glr' is \\[1\\]"),
    ({"progress": {"cur_nimg": "8", "step": 2, "tick": 1}}, r"progress\['cur_nimg'\] is '8'"),
    ({"state": {"G": 5}}, "its state does not fit a stylegan2 network"),
    ({"data": "16x16"}, "'data' is a str, expected a dict"),
])
def test_checkpoint_entries_of_the_wrong_type_are_named(tmp_path, change, message):
    recipe, opts = _recipe()
    ckpt = {"format": ckpt_lib.FORMAT, "model": "stylegan2", "arch": recipe.arch_spec(), "options": opts.to_dict(),
            "data": {"resolution": [16, 16], "num_channels": 3, "label_dim": 0, "name": "t"},
            "progress": {"cur_nimg": 8, "step": 2, "tick": 1}, "state": recipe.state_dict()}
    for key, value in change.items():
        ckpt[key] = {**ckpt[key], **value} if key == "options" else value
    ckpt["integrity"] = {"sha256": ckpt_lib.payload_digest(ckpt)}
    path = tmp_path / "checkpoint-000000.008.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=message):
        load_network(str(path))


# --- checkpoint integrity ------------------------------------------------------------------------------

def _flip_tensor_bytes(path):
    """Flip the exponent bits of a few float32s in the largest tensor record of a torch.save zip."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(open(path, "rb").read())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for k in range(0, min(info.file_size, 64), 4):
        data[start + k + 3] ^= 0x7F
    open(path, "wb").write(bytes(data))


def test_flipped_tensor_bytes_and_nan_weights_are_never_a_good_checkpoint(tmp_path, capsys):
    good = _save(tmp_path / "checkpoint-000000.008.pt", 8)
    good_bytes = good.read_bytes()
    flipped = _save(tmp_path / "checkpoint-000000.016.pt", 16)
    _flip_tensor_bytes(flipped)
    with pytest.raises(CheckpointError, match="corrupt: its tensor data do not match the SHA-256"):
        ckpt_lib.load_checkpoint(str(flipped))
    recipe, _ = _recipe()
    state = recipe.state_dict()
    next(t for t in state["G"].values() if t.is_floating_point())[0] = float("nan")
    nan = _save(tmp_path / "checkpoint-000000.024.pt", 24, state=state)
    with pytest.raises(CheckpointError, match=r"non-finite weights \(NaN or inf\) in state/G/"):
        ckpt_lib.load_checkpoint(str(nan))
    assert ckpt_lib.newest_valid_checkpoint(str(tmp_path)) == str(good)
    err = capsys.readouterr().err
    assert f"skipped {nan}: " in err and f"skipped {flipped}: " in err
    # the divergence guard: the last checkpoint written is the flipped one; it rolls back to the good one
    logged = []
    path, ckpt = loop._last_good(str(tmp_path), str(flipped), logged.append)
    assert path == str(good) and ckpt["progress"]["cur_nimg"] == 8
    assert any("not a good checkpoint" in line and "SHA-256" in line for line in logged)

    class Options:
        nan_policy = "stop"
    with pytest.raises(loop.DivergenceError, match=f"Last good checkpoint: {good}"):
        loop._recover(Options(), recipe, type("R", (), {"log": logged.append, "close": lambda self: None})(),
                      ["loss/G = nan"], 5, 20, loop._last_good(str(tmp_path), str(nan), logged.append), 0)
    assert good.read_bytes() == good_bytes


def test_the_guard_never_rolls_back_to_a_corrupted_checkpoint(tmp_path, monkeypatch, backend_flags):
    """A run diverges at tick 3 just after its checkpoint of tick 2 was corrupted on disk: it rolls back to
    the checkpoint of tick 1, saying why it passed over the newer one, and finishes healthy."""
    from ganops_models.models.registry import get_recipe
    from ganops_models.tools.train import new_run_options
    original_step, calls = StyleGAN2Recipe.train_step, [0]

    def poisoned(self, reals, labels, step, cur_nimg):      # NaN reals in the 5th step (tick 3)
        calls[0] += 1
        return original_step(self, reals * float("nan") if calls[0] == 5 else reals, labels, step, cur_nimg)
    original_save = ckpt_lib.save_checkpoint

    def save_then_corrupt(path, **kwargs):
        original_save(path, **kwargs)
        if path.endswith(ckpt_lib.checkpoint_name(16)) and calls[0] <= 4:
            _flip_tensor_bytes(path)
    monkeypatch.setattr(StyleGAN2Recipe, "train_step", poisoned)
    monkeypatch.setattr(ckpt_lib, "save_checkpoint", save_then_corrupt)
    opts = new_run_options({"cfg": "tiny", "resolution": "16", "cbase": 64, "cmax": 8, "batch": 4, "tick": 0.008,
                            "snap": 1, "workers": 0, "device": "cpu", "kimg": 0.024, "aug": "noaug",
                            "nan_policy": "rollback", "grid": (2, 2), "outdir": str(tmp_path)}, (16, 16), 1).options
    run_dir = str(tmp_path / "00000-guard")
    good = os.path.join(run_dir, ckpt_lib.checkpoint_name(8))
    progress = loop.training_loop(opts, get_recipe(opts.model), run_dir, DistInfo(), torch.device("cpu"),
                                  dataset=loop.open_training_data(opts))
    assert progress["cur_nimg"] == 24
    log = open(os.path.join(run_dir, "log.txt")).read()
    corrupted = os.path.join(run_dir, ckpt_lib.checkpoint_name(16))
    assert f"not a good checkpoint: checkpoint {corrupted!r} is corrupt" in log
    assert f"Last good checkpoint: {good}; rolled back to it" in log and log.count("rolled back to it") == 1
    assert ckpt_lib.load_checkpoint(good)["progress"]["cur_nimg"] == 8
    assert ckpt_lib.load_checkpoint(corrupted)["progress"]["cur_nimg"] == 16    # written again after the rollback


def test_old_checkpoints_without_a_digest_load_with_a_note(tmp_path, capsys):
    recipe, opts = _recipe()
    path = tmp_path / "checkpoint-000000.008.pt"
    _save(path)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["integrity"]
    torch.save(ckpt, path)
    assert ckpt_lib.load_checkpoint(str(path))["progress"]["cur_nimg"] == 8
    assert "written without an integrity check" in capsys.readouterr().err


# --- run folders and 'latest' ---------------------------------------------------------------------------

def test_stray_files_truncated_newest_and_a_run_without_checkpoints(tmp_path, capsys, backend_flags):
    runs = tmp_path / "runs"
    old_run, new_run = runs / "00000-old", runs / "00001-new"
    good = _save(old_run / "checkpoint-000000.008.pt", 8)
    good_bytes = good.read_bytes()
    truncated = _save(old_run / "checkpoint-000000.016.pt", 16)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (old_run / "checkpoint-000000.020 (copy).pt").write_bytes(good_bytes)
    (old_run / "checkpoint-best.pt").write_bytes(b"notes")
    new_run.mkdir()
    (new_run / "checkpoint-000000.004.pt").write_bytes(b"\x00" * 10)
    assert ckpt_lib.list_checkpoints(str(old_run)) == [str(good), str(truncated)]
    assert train.main(["--resume", "latest", "--outdir", str(runs), "--device", "cpu", "-n"]) == 0
    out, err = capsys.readouterr()
    assert f"skipped {truncated}: " in err and "corrupt or truncated" in err
    assert f"skipped {new_run / 'checkpoint-000000.004.pt'}: " in err
    assert f"--resume latest: run {old_run}, checkpoint checkpoint-000000.008.pt (passed over the newer " \
           f"00001-new: no valid checkpoint)" in err
    assert json.loads(out[out.index("{"):])["resume"] == str(good)
    assert good.read_bytes() == good_bytes


def test_resume_from_a_checkpoint_with_huge_settings_exits_2(tmp_path, capsys, backend_flags):
    path = _save(tmp_path / "checkpoint-000000.008.pt", options={"cmax": 65536})
    assert train.main(["--resume", str(path), "--outdir", str(tmp_path / "runs"), "--device", "cpu", "-n"]) == 2
    assert "error: checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(CheckpointError, match="cmax=65536 is out of bounds"):
        read_checkpoint(str(path))


# --- faults while writing ------------------------------------------------------------------------------

@contextlib.contextmanager
def _full_disk(monkeypatch, after_bytes=2000):
    """Checkpoint writes fail with ENOSPC after ``after_bytes`` (a fake write, works anywhere)."""
    real = ckpt_lib.atomic_write

    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += len(data)
            if self.n > after_bytes:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    @contextlib.contextmanager
    def atomic_write(path, *args):
        with real(path, *args) as f:
            yield Full(f)
    monkeypatch.setattr(ckpt_lib, "atomic_write", atomic_write)
    yield


def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(tmp_path, monkeypatch):
    good = _save(tmp_path / "checkpoint-000000.008.pt", 8)
    good_bytes = good.read_bytes()
    with _full_disk(monkeypatch):
        with pytest.raises(CheckpointWriteError) as e:
            _save(tmp_path / "checkpoint-000000.016.pt", 16)
        with pytest.raises(CheckpointWriteError):
            _save(good, 8)                                # over an existing checkpoint: it stays whole
    message = str(e.value)
    assert "\n" not in message and f"no space left on the disk of {tmp_path}" in message and "MiB" in message
    assert good.read_bytes() == good_bytes and not (tmp_path / "checkpoint-000000.016.pt").exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


MICRO = ["--cfg", "tiny", "--resolution", "16", "--cbase", "64", "--cmax", "8", "--batch", "4", "--tick", "0.008",
         "--snap", "1", "--workers", "0", "--device", "cpu", "--aug", "noaug"]


def test_training_on_a_full_disk_stops_naming_the_last_good_checkpoint_then_resumes(tmp_path, capsys, monkeypatch,
                                                                                  backend_flags):
    runs = tmp_path / "runs"
    real, writes = ckpt_lib.atomic_write, []

    @contextlib.contextmanager
    def second_write_fails(path, *args):
        writes.append(path)
        with real(path, *args) as f:
            if len(writes) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            yield f
    with monkeypatch.context() as patch:
        patch.setattr(ckpt_lib, "atomic_write", second_write_fails)
        assert train.main(MICRO + ["--outdir", str(runs), "--kimg", "0.016"]) == 2
    run = ckpt_lib.run_dirs(str(runs))[0]
    first = os.path.join(run, "checkpoint-000000.008.pt")
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(f"error: no space left on the disk of {run} to write checkpoint-000000.016.pt")
    assert "MiB" in message and message.endswith(f"last good checkpoint: {first}")
    assert ckpt_lib.load_checkpoint(first)["progress"]["cur_nimg"] == 8
    # a kill before the rename leaves a temporary file: removed when the run goes on
    orphan = os.path.join(run, ".checkpoint-000000.016.pt.k1ll3d.tmp")
    open(orphan, "wb").write(b"half a checkpoint")
    (runs / "keep.tmp").write_bytes(b"not ours")
    assert train.main(MICRO + ["--outdir", str(runs), "--resume", "latest", "--kimg", "0.016"]) == 0
    assert not os.path.exists(orphan) and (runs / "keep.tmp").exists()
    log = open(os.path.join(run, "log.txt")).read()
    assert "removed .checkpoint-000000.016.pt.k1ll3d.tmp, the temporary file of a checkpoint write" in log
    assert ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.016.pt"))["progress"]["cur_nimg"] == 16


# --- not regular files (issue #35) ---------------------------------------------------------------------

_FIFO_COMMANDS = textwrap.dedent("""
    import sys
    from ganops_models.tools import convert, generate
    fifo, out = sys.argv[1:]
    print(generate.main(["--network", fifo, "--seeds", "0", "--outdir", out, "--device", "cpu"]),
          convert.main(["--network", fifo, "--out", out + "/x.pt"]))
""")


def test_a_fifo_or_device_as_network_is_named_not_missing(tmp_path):
    fifo = tmp_path / "net.pkl"
    os.mkfifo(fifo)
    for spec, kind in ((str(fifo), r"a FIFO \(named pipe\)"), ("/dev/null", "a character device")):
        with pytest.raises(CheckpointError, match=f"is {kind}, not a regular file"):
            load_network(spec)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_network(str(tmp_path / "missing.pkl"))
    # the commands, in a subprocess with a timeout: reading a FIFO would hang
    proc = subprocess.run([sys.executable, "-c", _FIFO_COMMANDS, str(fifo), str(tmp_path / "out")], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "2"], proc.stderr[-2000:]
    assert proc.stderr.count("is a FIFO (named pipe), not a regular file") == 2
