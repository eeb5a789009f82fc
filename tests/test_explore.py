"""python -m ganops_models.explore: each widget's frame equals the CLI tools' picture (generate, generate
--projected-w, style_mixing, NVIDIA's formulas where no tool has the setting), for a ganops StyleGAN2
checkpoint and an NVIDIA StyleGAN3 pickle; the server's API, its newest-request-wins rendering, the
command line's refusals and the notebook helper. The page in a real browser: test_explore_browser.py."""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the explore extra is not installed: pip install '.[explore]'")
pytest.importorskip("uvicorn", reason="the explore extra is not installed: pip install '.[explore]'")

with warnings.catch_warnings():     # starlette suggests httpx2 over httpx; either drives the TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from explore_helpers import generated_png, stylegan2_run, stylegan3_pickle  # noqa: E402
from latent_helpers import save_checkpoint  # noqa: E402

from ganops_models.images import png_bytes, to_uint8  # noqa: E402
from ganops_models.network_loader import load_network, seed_latents  # noqa: E402
from ganops_models.tools import explore, latent_space, style_mixing  # noqa: E402
from ganops_models.tools.explore_render import (Settings, blend_seeds, feature_image, render,  # noqa: E402
                                                settings_ws)
from ganops_models.tools.latent_space import set_input_transform  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_intraop_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """{'sg2': ganops checkpoint (newest of a run), 'sg3': NVIDIA StyleGAN3 pickle}."""
    tmp = tmp_path_factory.mktemp("nets")
    return {"sg2": stylegan2_run(tmp), "sg3": stylegan3_pickle(tmp)}


def _explorer(path, projected_w=None):
    return explore.Explorer(explore.network_choices([path]), "cpu", projected_w)


def _png(b64):
    return base64.b64decode(b64)


@pytest.mark.parametrize("kind", ["sg2", "sg3"])
@pytest.mark.parametrize("settings", [{"x": 3, "psi": 0.7}, {"x": 5, "noise_mode": "none"},
                                      {"x": 0, "y": 1, "psi": 0.0, "noise_seed": 9}])
def test_capture_is_generates_file_byte_for_byte(nets, kind, settings, tmp_path):
    capture = _explorer(nets[kind]).render(settings, capture=True)
    assert capture["not_reproducible"] is None
    assert capture["settings"]["seed"] == int(settings["x"]) + 100 * settings.get("y", 0)
    assert _png(capture["png"]) == generated_png(capture, tmp_path)


def test_stylegan3_translate_rotate_capture_is_generate_translate_rotate(nets, tmp_path):
    """generate --translate X,Y --rotate DEG (issue #30 item 8) draws the explorer's moved picture."""
    capture = _explorer(nets["sg3"]).render({"x": 2, "psi": 0.8, "translate_x": 0.25, "translate_y": -0.5,
                                             "rotate": 30.0}, capture=True)
    assert capture["not_reproducible"] is None and "--rotate" in capture["generate_command"]
    assert _png(capture["png"]) == generated_png(capture, tmp_path)
    plain = _explorer(nets["sg3"]).render({"x": 2, "psi": 0.8}, capture=True)
    assert _png(plain["png"]) != _png(capture["png"])


def test_conditional_network_class(tmp_path):
    path = save_checkpoint(tmp_path / "cond.pt", label_dim=3)
    explorer = _explorer(path)
    capture = explorer.render({"x": 4, "class_idx": 2, "psi": 0.5}, capture=True)
    assert "--class" in capture["generate_command"]
    assert _png(capture["png"]) == generated_png(capture, tmp_path)
    with pytest.raises(ValueError, match="conditional; give a class"):
        explorer.render({"x": 4})


def test_projected_w_is_generate_projected_w(nets, tmp_path):
    net = load_network(nets["sg2"])
    npz = str(tmp_path / "projected_w.npz")
    latent_space.save_projected_w(npz, latent_space.seed_ws(net, [7, 8], 0.8))
    capture = _explorer(nets["sg2"], npz).render({"projected": 1}, capture=True)
    assert capture["generate_command"][4:8] == [nets["sg2"], "--projected-w", npz, "--noise-mode"]
    assert capture["generate_file"] == "proj01.png"
    assert _png(capture["png"]) == generated_png(capture, tmp_path)
    with pytest.raises(ValueError, match="no projected w #2"):
        _explorer(nets["sg2"], npz).render({"projected": 2})
    dcgan = save_checkpoint(tmp_path / "dcgan.pt", model="dcgan", resolution=(32, 32))
    both = explore.Explorer([nets["sg2"], dcgan], "cpu", npz)          # no ws for a network without w space
    with pytest.raises(ValueError, match="--projected-w needs a style-based network"):
        both.select(1)
    assert both.index == 0 and both.net.kind == "stylegan2" and both.render({"projected": 0})["image"]


@pytest.mark.parametrize("kind", ["sg2", "sg3"])
def test_style_mixing_is_the_style_mixing_grid_cell(nets, kind):
    net = load_network(nets[kind])
    grid = style_mixing.style_mixing_grid(net, [3], [5], [1, 2, 3], truncation_psi=0.8)
    frame = render(net, Settings(x=3, psi=0.8, mix_seed=5, mix_lo=1, mix_hi=3))
    assert np.array_equal(frame.image, grid[16:32, 16:32])      # the cell (row seed 3, column seed 5)
    assert not np.array_equal(frame.image, render(net, Settings(x=3, psi=0.8)).image)
    command, why = explore.explore_render.generate_command("n.pt", Settings(x=3, mix_seed=5), "cpu")
    assert command is None and "style mixing" in why
    with pytest.raises(ValueError, match="style-mixing layers"):
        render(net, Settings(mix_seed=5, mix_lo=2, mix_hi=net.G_ema.num_ws))


def test_fractional_seeds_blend_the_neighbours_around_w_avg(nets):
    """NVIDIA's latent widget: seed x + 100 y, weights (1 - |dx|)(1 - |dy|), blended as offsets from w_avg."""
    assert blend_seeds(2.25, 0.5) == [(2, 0.375), (3, 0.125), (102, 0.375), (103, 0.125)]
    assert blend_seeds(7.0, 1.0) == [(107, 1.0)]
    net = load_network(nets["sg2"])
    ws = latent_space.seed_ws(net, [2, 3, 102, 103], 0.9)
    w_avg = net.G_ema.mapping.w_avg
    expected = w_avg + 0.375 * (ws[0] - w_avg) + 0.125 * (ws[1] - w_avg) + 0.375 * (ws[2] - w_avg) \
        + 0.125 * (ws[3] - w_avg)
    s = Settings(x=2.25, y=0.5, psi=0.9)
    assert torch.allclose(settings_ws(net, s)[0], expected, atol=1e-6)
    assert np.array_equal(render(net, s).image, latent_space.synthesize(net.G_ema, expected[None])[0]
                          .permute(1, 2, 0).numpy())
    command, why = explore.explore_render.generate_command("n.pt", s, "cpu")
    assert command is None and "fractional seed" in why


@pytest.mark.parametrize("kind", ["sg2", "sg3"])
def test_truncation_cutoff_is_the_generators_cutoff(nets, kind):
    net = load_network(nets[kind])
    with torch.no_grad():
        expected = to_uint8(net.G_ema(seed_latents([6], 8), None, truncation_psi=0.3, truncation_cutoff=2,
                                      noise_mode="const"))[0].permute(1, 2, 0).numpy()
    frame = render(net, Settings(x=6, psi=0.3, cutoff=2))
    assert np.array_equal(frame.image, expected)
    assert not np.array_equal(frame.image, render(net, Settings(x=6, psi=0.3)).image)


def test_noise_seed_picks_the_random_noise(nets):
    net = load_network(nets["sg2"])
    rng = torch.get_rng_state()
    a, b, c = (render(net, Settings(x=1, noise_mode="random", noise_seed=k)).image for k in (4, 4, 5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert torch.equal(torch.get_rng_state(), rng)        # the global generator is left alone
    const = [render(net, Settings(x=1, noise_seed=k)).image for k in (4, 5)]
    assert np.array_equal(*const) and not np.array_equal(const[0], a)
    assert explore.explore_render.generate_command("n.pt", Settings(noise_mode="random"), "cpu")[0] is None


def test_stylegan3_translate_rotate_set_nvidias_input_transform(nets, tmp_path):
    net = load_network(nets["sg3"])
    set_input_transform(net.G_ema, (0.25, -0.5), 30)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    m = np.array([[c, s, 0.25], [-s, c, -0.5], [0, 0, 1]])            # gen_images.py make_transform
    assert torch.allclose(net.G_ema.synthesis.input.transform, torch.from_numpy(np.linalg.inv(m)).float())
    with torch.no_grad():
        expected = to_uint8(net.G_ema(seed_latents([2], 8), None, noise_mode="const"))[0].permute(1, 2, 0).numpy()
    frame = render(net, Settings(x=2, translate_x=0.25, translate_y=-0.5, rotate=30))
    assert np.array_equal(frame.image, expected)
    back = render(net, Settings(x=2))                                   # 0/0/0: generate's picture again
    assert not np.array_equal(back.image, expected)
    capture = _explorer(nets["sg3"]).render({"x": 2}, capture=True)
    assert _png(capture["png"]) == png_bytes(back.image) == generated_png(capture, tmp_path)
    with pytest.raises(ValueError, match="only StyleGAN3"):
        render(load_network(nets["sg2"]), Settings(rotate=10))


@pytest.mark.parametrize("kind", ["sg2", "sg3"])
def test_layer_view_is_the_layers_feature_map(nets, kind):
    net = load_network(nets[kind])
    frame = render(net, Settings(x=3))
    assert "output" in frame.layers and len(frame.layers) > 3
    name = [n for n in frame.layers if n != "output"][-3]
    module = net.G_ema.synthesis.get_submodule(name.split(":")[0])
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple) else out))
    latent_space.synthesize(net.G_ema, latent_space.seed_ws(net, [3]))
    handle.remove()
    feat = seen[0][0]
    assert list(feat.shape) == frame.layers[name]
    for channel, f in ((-1, feat.mean(0)), (1, feat[1])):
        f = torch.nn.functional.interpolate((f / f.abs().max())[None, None], size=(16, 16), mode="nearest")[0, 0]
        expected = to_uint8(f).numpy()
        shown = render(net, Settings(x=3, layer=name, channel=channel)).layer_image
        assert shown.shape == (16, 16, 3) and np.array_equal(shown[:, :, 0], expected)
    with pytest.raises(ValueError, match="channel must be -1"):
        render(net, Settings(layer=name, channel=frame.layers[name][0]))
    with pytest.raises(ValueError, match="not a layer"):
        render(net, Settings(layer="nope"))
    assert feature_image(torch.zeros(2, 4, 4), -1, (8, 8)).shape == (8, 8, 3)   # all zero: no division by 0


def test_network_without_w_space_draws_generates_seeds(tmp_path):
    path = save_checkpoint(tmp_path / "dcgan.pt", model="dcgan", resolution=(32, 32))
    explorer = _explorer(path)
    state = explorer.state()
    assert not state["w_space"] and state["layers"]
    capture = explorer.render({"x": 4}, capture=True)
    assert _png(capture["png"]) == generated_png(capture, tmp_path)
    with pytest.raises(ValueError, match="no w space"):
        explorer.render({"x": 4.5})


@pytest.mark.parametrize("settings,message", [
    ({"seed": 3}, "unknown setting"), ({"psi": float("nan")}, "psi must be a finite number"),
    ({"x": "3"}, "x must be a finite number"), ({"cutoff": 1.5}, "cutoff must be an integer"),
    ({"layer": 3}, "layer must be a string"), ({"noise_mode": "loud"}, "noise_mode must be one of"),
    ({"mix_seed": -1}, r"mix_seed must be in \[0, 2\*\*32\)"), ({"channel": True}, "channel must be an integer"),
    ({"cutoff": 99}, r"cutoff must be in \[0, 6\]"),
])
def test_bad_settings_are_refused_by_name(nets, settings, message):
    with pytest.raises(ValueError, match=message):
        _explorer(nets["sg2"]).render(settings)


def test_api(nets, tmp_path):
    explorer = _explorer(nets["sg2"])
    client = TestClient(explore.build_app(explorer))
    page = client.get("/")
    assert page.status_code == 200 and "static/explore.js" in page.text
    assert client.get("/static/explore.css").status_code == 200
    assert client.get("/static/../explore.py").status_code == 404
    state = client.get("/api/state").json()
    assert [n["label"] for n in state["networks"]] == ["00000-toy/checkpoint-000004.000.pt", "00000-toy/checkpoint-000000.000.pt"]
    assert state["networks"][0]["path"] == os.path.normpath(nets["sg2"])
    assert (state["index"], state["kind"], state["num_ws"], state["width"]) == (0, "stylegan2", 6, 16)
    frame = client.post("/api/render", json={"x": 3, "layer": "output"}).json()
    assert frame["seed"] == 3 and frame["render_ms"] > 0 and frame["layer_image"]
    before = _png(client.post("/api/capture", json={"x": 3}).json()["png"])
    switched = client.post("/api/network", json={"index": 1}).json()
    assert switched["index"] == 1
    capture = client.post("/api/capture", json={"x": 3}).json()
    assert capture["settings"]["network"].endswith("checkpoint-000000.000.pt") and _png(capture["png"]) != before
    assert _png(capture["png"]) == generated_png(capture, tmp_path)
    for body in ({"index": 2}, {"index": nets["sg3"]}, {"index": True}, ["x"]):
        answer = client.post("/api/network", json=body)
        assert answer.status_code == 400 and "network must be an index" in answer.json()["error"]
    assert client.post("/api/render", content=b"{", headers={"content-type": "application/json"}).json() == \
        {"error": "the request body is not JSON"}
    assert client.post("/api/render", json={"x": "a"}).status_code == 400
    # a cross-site form post (no CORS preflight) is not read
    assert client.post("/api/network", content=b'{"index": 0}', headers={"content-type": "text/plain"}).status_code == 415


def test_a_request_waiting_for_the_frame_is_replaced_by_a_newer_one(nets):
    """Three requests arrive while a frame is drawn: the two older ones answer None (204), the newest renders."""
    explorer = _explorer(nets["sg2"])
    results = {}
    threads = []
    with explorer._lock:                                   # a frame is being drawn
        for i in range(3):
            before = explorer._newest
            t = threading.Thread(target=lambda i=i: results.__setitem__(i, explorer.render({"x": i})), daemon=True)
            t.start()
            threads.append(t)
            deadline = time.monotonic() + 10
            while explorer._newest == before and time.monotonic() < deadline:
                time.sleep(0.005)
    for t in threads:
        t.join(30)
    assert results[0] is None and results[1] is None and results[2]["seed"] == 2


def test_64px_frame_renders_within_0_3_s(tmp_path):
    """The issue's CPU target: a 64x64 tiny network updates within 0.3 s (median of 5 requests)."""
    explorer = _explorer(stylegan2_run(tmp_path, (64, 64)))
    times = []
    for i in range(5):
        start = time.perf_counter()
        explorer.render({"x": i + 0.5, "layer": "blocks.3.conv1"})
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.3, times


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args,message", [
    (["--host", "0.0.0.0"], "--host 0.0.0.0: other machines could reach the page; add --allow-remote"),
    (["--port", "70000"], r"--port must be in \[0, 65535\]"),
    (["--device", "cuda"], "no CUDA GPU"),
], ids=["remote-host", "port", "gpu-device"])     # no 'cuda' in the ids: CI's emulator step selects -k cuda
def test_bad_command_lines_exit_2_with_one_line(nets, capsys, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert explore.main(["--network", nets["sg2"], *args]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1


def test_unknown_flag_and_missing_network(nets, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        explore.main(["--network", nets["sg2"], "--colour", "red"])
    assert e.value.code == 2
    assert explore.main(["--network", str(tmp_path / "nope.pt"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --colour red" in err and "nope.pt" in err and err.count("\n") == 2


def test_bad_projected_w_and_missing_extra_exit_2(nets, capsys, tmp_path, monkeypatch):
    bad = tmp_path / "projected_w.npz"
    bad.write_bytes(b"not a zip")
    assert explore.main(["--network", nets["sg2"], "--device", "cpu", "--projected-w", str(bad)]) == 2
    assert "is not a readable .npz of numbers" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)           # import uvicorn fails: the extra is missing
    assert explore.main(["--network", nets["sg2"], "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "needs the Python package 'uvicorn'" in err and "ganops[explore]" in err and err.count("\n") == 1


def test_a_taken_port_is_refused(nets, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert explore.main(["--network", nets["sg2"], "--device", "cpu", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_remote_host_needs_the_flag_and_warns(nets, capsys, monkeypatch):
    """--allow-remote serves and warns (bound to 127.0.0.1 here: tests never listen on other addresses)."""
    bound = []

    class Server:
        def run(self, sockets):
            pass
    sock = socket.socket()       # never bound: the server stub returns at once
    monkeypatch.setattr(explore, "bind", lambda host, port: bound.append(host) or sock)
    monkeypatch.setattr(explore, "url_of", lambda s: "http://192.0.2.1:7860/")
    monkeypatch.setattr(explore, "make_server", lambda explorer, s: Server())
    assert explore.main(["--network", nets["sg2"], "--device", "cpu", "--host", "0.0.0.0", "--allow-remote"]) == 0
    out, err = capsys.readouterr()
    assert bound == ["0.0.0.0"] and "warning: --host 0.0.0.0 --allow-remote: anyone" in err
    assert "open http://192.0.2.1:7860/" in out


@pytest.mark.slow
def test_the_command_serves_the_page(nets):
    """python -m ganops_models.explore on a free port: the page and its API answer; the process is stopped."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ganops_models.explore", "--network", nets["sg3"], "--device",
                             "cpu", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "open http" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert f"open http://127.0.0.1:{port}/" in line, proc.stderr.read() if proc.poll() is not None else line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert b"ganops explore" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=30) as r:
            assert json.load(r)["stylegan3"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_show_serves_on_localhost_for_the_notebook(nets, monkeypatch):
    frames = []
    monkeypatch.setattr(explore, "notebook_frame", lambda port, height: lambda: frames.append(port))
    handle = explore.show(load_network(nets["sg2"]))
    try:
        assert handle.url == f"http://127.0.0.1:{handle.port}/" and frames == [handle.port]
        with urllib.request.urlopen(handle.url + "api/state", timeout=30) as r:
            assert json.load(r)["kind"] == "stylegan2"
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


def test_notebook_frame_goes_through_the_notebooks_proxy(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", shown.append)
    monkeypatch.setattr(explore.importlib.util, "find_spec",
                        lambda name: object() if name == "jupyter_server_proxy" else None)
    explore.notebook_frame(4321, 500)()
    assert shown[0].src == "proxy/4321/"                   # relative to the notebook: its own proxy


def test_the_page_loads_nothing_from_the_internet():
    page = os.path.join(ROOT, "ganops_models", "tools", "explore_page")
    for name in os.listdir(page):
        text = open(os.path.join(page, name)).read()
        assert not re.search(r"https?:|//[a-z]|@import|url\(", text), name
