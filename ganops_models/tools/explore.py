"""Explore a network live in the browser (issue #32).

``python -m ganops_models.explore --network X [--network Y ...] [--port 7860] [--host 127.0.0.1]
[--allow-remote] [--device cpu|cuda] [--projected-w FILE]`` serves a page (``explore_page/``: plain HTML, JS
and CSS, nothing loaded from the internet) that renders the network on the server, in the network's device,
with the widgets of :mod:`ganops_models.tools.explore_render`. The page picks networks by index among the
files named on the command line and the checkpoints of their runs: it never sends a path. A render request
that arrives while a frame is drawn replaces the waiting one (the newest wins; the others answer 204), so
the page never builds up a backlog. In a notebook, :func:`show` displays the page in an iframe.
"""
import argparse
import base64
import importlib.util
import itertools
import os
import socket
import sys
import threading
import time
from typing import List, Optional

import torch

from ganops_models.extras import require
from ganops_models.formats.checkpoint import list_checkpoints
from ganops_models.images import png_bytes
from ganops_models.network_loader import LoadedNetwork, load_network, resolve_network
from ganops_models.tools import explore_render, latent_space
from ganops_models.tools.cli import NETWORK_HELP, ArgumentParser, check_device, run_main

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explore_page")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
LIVE_PNG_LEVEL = 1          # live frames: fast PNG; captures use save_png's level, as generate does


def network_choices(specs: List[str]) -> List[str]:
    """The network files the page may switch between: each ``--network`` (resolved as ``load_network``
    does) and, for a ganops checkpoint in a run folder, the run's other checkpoints; no duplicates."""
    paths = []
    for spec in specs:
        path = resolve_network(spec)
        paths.append(path)
        if os.path.basename(path).startswith("checkpoint-") and path.endswith(".pt"):
            paths.extend(list_checkpoints(os.path.dirname(path) or "."))
    return list(dict.fromkeys(os.path.normpath(p) for p in paths))


def network_label(path: str) -> str:
    """A short name for the page: 'run/checkpoint-*.pt' for a run's checkpoint, else the file name."""
    name = os.path.basename(path)
    run = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return f"{run}/{name}" if name.startswith("checkpoint-") and run else name


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Explorer:
    """The server's state: the network choices, the loaded network and the one-frame-at-a-time render."""

    def __init__(self, choices: List[str], device, projected_w: Optional[str] = None,
                 first: Optional[LoadedNetwork] = None):
        self.choices, self.device, self.projected_w = choices, torch.device(device), projected_w
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._newest = 0
        self.index = 0
        self.net = first if first is not None else load_network(choices[0], self.device)
        self.projected = self._load_projected(self.net)

    def _load_projected(self, net: LoadedNetwork):
        """The ``--projected-w`` ws checked against ``net`` (None without the flag)."""
        if self.projected_w is None:
            return None
        latent_space.require_w_space(net, "--projected-w")
        return latent_space.load_projected_w(self.projected_w, net)

    def select(self, index) -> dict:
        """Load network ``index`` of :attr:`choices` (an integer index: the page never names a file)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.choices):
            raise ValueError(f"network must be an index in [0, {len(self.choices)}), got {index!r}")
        with self._lock:
            if index != self.index:       # a network that cannot be used leaves the current one in place
                net = load_network(self.choices[index], self.device)
                self.projected, self.net, self.index = self._load_projected(net), net, index
        return self.state()

    def state(self) -> dict:
        """What the page needs to build its widgets (the layers are read from one frame)."""
        with self._lock:
            net = self.net
            frame = explore_render.render(net, explore_render.Settings(class_idx=0 if net.c_dim else None))
        h, w = net.resolution
        return {"networks": [{"label": network_label(p), "path": p} for p in self.choices],
                "index": self.index, "kind": net.kind, "width": w, "height": h,
                "w_space": net.has_w_space, "num_ws": net.G_ema.num_ws if net.has_w_space else 0,
                "c_dim": net.c_dim, "stylegan3": explore_render.is_stylegan3(net),
                "projected": 0 if self.projected is None else len(self.projected),
                "layers": [{"name": k, "shape": v} for k, v in frame.layers.items()],
                "device": str(self.device)}

    def render(self, settings: dict, capture: bool = False) -> Optional[dict]:
        """The frame of ``settings`` as base64 PNGs and the render time, or None when a newer request
        arrived while this one waited (it replaces this one). ``capture``: the PNG as generate writes it and
        the settings JSON with the reproducing ``generate`` command."""
        s = explore_render.Settings.from_dict(settings)
        if not capture:
            ticket = self._newest = next(self._tickets)
        with self._lock:
            if not capture and ticket != self._newest:
                return None
            start = time.perf_counter()
            frame = explore_render.render(self.net, s, self.projected)
            render_ms = (time.perf_counter() - start) * 1000
            path = self.choices[self.index]
        if capture:
            command, note = explore_render.generate_command(path, s, self.device.type, self.projected_w)
            return {"png": _b64(png_bytes(frame.image)),
                    "file": note if command else f"explore-seed{s.seed:04d}.png",
                    "settings": {"network": path, "device": self.device.type, "seed": s.seed, **vars(s)},
                    "generate_command": command, "generate_file": note if command else None,
                    "not_reproducible": None if command else note}
        return {"image": _b64(png_bytes(frame.image, LIVE_PNG_LEVEL)), "render_ms": round(render_ms, 1),
                "seed": s.seed, "layer_image": None if frame.layer_image is None
                else _b64(png_bytes(frame.layer_image, LIVE_PNG_LEVEL))}


def build_app(explorer: Explorer):
    """The Starlette app: the page, its files and the JSON API (state, network, render, capture)."""
    require("starlette", "explore", "python -m ganops_models.explore")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def call(request, fn):
        # JSON only: a cross-site form or text/plain POST (no CORS preflight) is refused unread
        if request.method == "POST" and request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send the settings as application/json"}, status_code=415)
        try:
            body = await request.json() if request.method == "POST" else None
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        try:
            result = await run_in_threadpool(fn, body)
        except (ValueError, RuntimeError) as e:   # bad settings; a network that cannot be loaded
            return JSONResponse({"error": str(e)}, status_code=400)
        return Response(status_code=204) if result is None else JSONResponse(result)

    async def index(_request):
        return FileResponse(os.path.join(PAGE_DIR, "index.html"))

    async def state(request):
        return await call(request, lambda _body: explorer.state())

    async def network(request):
        return await call(request, lambda body: explorer.select(body.get("index") if isinstance(body, dict) else None))

    async def render(request):
        return await call(request, explorer.render)

    async def capture(request):
        return await call(request, lambda body: explorer.render(body, capture=True))

    return Starlette(routes=[Route("/", index), Route("/api/state", state), Route("/api/network", network, methods=["POST"]),
                             Route("/api/render", render, methods=["POST"]),
                             Route("/api/capture", capture, methods=["POST"]),
                             Mount("/static", StaticFiles(directory=PAGE_DIR))])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); ValueError saying what to do if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host") from None
    sock.listen(64)
    return sock


def make_server(explorer: Explorer, sock: socket.socket):
    """A uvicorn server for the app (quiet: warnings only), not yet started."""
    uvicorn = require("uvicorn", "explore", "python -m ganops_models.explore")
    return uvicorn.Server(uvicorn.Config(build_app(explorer), log_level="warning", lifespan="off"))


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class Handle:
    """A page served from a background thread (:func:`show`); ``stop()`` ends it."""

    def __init__(self, server, sock, thread):
        self.server, self.sock, self.thread = server, sock, thread
        self.port = sock.getsockname()[1]
        self.url = url_of(sock)

    def stop(self, timeout: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


def serve_in_thread(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> Handle:
    """Serve the page from a daemon thread on host:port (0: a free port) and wait until it listens."""
    sock = bind(host, port)
    server = make_server(explorer, sock)
    server.install_signal_handlers = lambda: None     # the notebook's own thread keeps its signals
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="explore")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the explore server did not start")
    return Handle(server, sock, thread)


def notebook_frame(port: int, height: int = 760):
    """The iframe of the page on ``port`` through the notebook's own proxy: Colab's kernel-port proxy, else
    jupyter-server-proxy's ``proxy/<port>/`` (relative to the notebook), else the local address."""
    try:
        from google.colab import output          # Colab: no public link, only this notebook's proxy
        return lambda: output.serve_kernel_port_as_iframe(port, height=height)
    except ImportError:
        pass
    from IPython.display import IFrame, display
    proxied = importlib.util.find_spec("jupyter_server_proxy") is not None
    src = f"proxy/{port}/" if proxied else f"http://127.0.0.1:{port}/"
    return lambda: display(IFrame(src, width="100%", height=height))


def show(network, device: Optional[str] = None, height: int = 760, projected_w: Optional[str] = None) -> Handle:
    """Display the explorer inline in Jupyter/Colab for ``network`` (anything ``load_network`` takes, or a
    :class:`LoadedNetwork`); it listens on 127.0.0.1 only. Returns the :class:`Handle` (``.stop()``)."""
    if isinstance(network, LoadedNetwork):
        explorer = Explorer([network.path], latent_space.generator_device(network), projected_w, first=network)
    else:
        device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        explorer = Explorer(network_choices([network]), device, projected_w)
    handle = serve_in_thread(explorer)
    notebook_frame(handle.port, height)()
    return handle


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ganops_models.explore", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", action="append", required=True,
                   help=NETWORK_HELP + ", or an NVIDIA pickle; repeat to switch between several on the page")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other machines can reach (anyone who can reach it can use the page)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--projected-w", help="projected_w.npz (ganops_models.project): its ws can be shown too")
    return p


def _run(args) -> int:
    if args.host not in LOCAL_HOSTS and not args.allow_remote:
        raise ValueError(f"--host {args.host}: other machines could reach the page; add --allow-remote if "
                         f"you mean it, or leave --host out (127.0.0.1)")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    require("starlette", "explore", "python -m ganops_models.explore")
    require("uvicorn", "explore", "python -m ganops_models.explore")
    explorer = Explorer(network_choices(args.network), args.device, args.projected_w)
    sock = bind(args.host, args.port)
    if args.host not in LOCAL_HOSTS:
        print(f"warning: --host {args.host} --allow-remote: anyone who can reach this address can use the "
              f"page and the GPU behind it", file=sys.stderr)
    print(f"explore: {explorer.net.describe()}")
    print(f"open {url_of(sock)} (Ctrl+C to stop)", flush=True)
    try:
        make_server(explorer, sock).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def main(argv=None) -> int:
    return run_main(_run, build_parser(), argv)
