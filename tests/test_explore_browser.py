"""The explore page in a real browser: headless Chromium (Debian's ``chromium`` package, driven by
Playwright through the system browser; nothing is downloaded) against ``python -m ganops_models.explore``
serving a tiny StyleGAN2 run and an NVIDIA StyleGAN3 pickle on 127.0.0.1.

It changes the seed, psi, style mixing and the layer view with the mouse and keyboard, captures (the
PNG and JSON downloads) and checks the PNG against ``style_mixing``'s cell and ``generate``'s file,
drags the seed pad and animates, then switches to the StyleGAN3 pickle and rotates it. The page's screenshot is written to
``$GANOPS_ARTIFACTS/explore.png`` (CI keeps it; docs/images/explore.png is a copy). Without a Chromium
the test skips saying so, unless ``GANOPS_REQUIRE_BROWSER=1`` (CI), where that fails it.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from explore_helpers import generated_png, stylegan2_run, stylegan3_pickle

from ganops_models.network_loader import load_network
from ganops_models.tools import style_mixing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = os.environ.get("GANOPS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_MS = 60_000


def _unavailable(reason):
    if os.environ.get("GANOPS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (GANOPS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install '.[dev]'")
    if CHROMIUM is None:
        _unavailable("no Chromium on this machine: apt-get install chromium (or set GANOPS_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=WAIT_MS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server(tmp_path):
    """(url, StyleGAN2 checkpoint, StyleGAN3 pickle) of an explore process on a free 127.0.0.1 port."""
    ckpt, pkl = stylegan2_run(tmp_path, (64, 64)), stylegan3_pickle(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ganops_models.explore", "--network", ckpt, "--network", pkl,
                             "--device", "cpu", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 60
        while "open http" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert f"open http://127.0.0.1:{port}/" in line, proc.stderr.read() if proc.poll() is not None else line
        yield f"http://127.0.0.1:{port}/", ckpt, pkl
    finally:
        proc.terminate()
        proc.wait(30)


def _settle(page):
    page.wait_for_function("window.explore.settled()", timeout=WAIT_MS)
    assert page.inner_text("#error") == ""


def _capture(page, outdir):
    """Click capture; the saved (PNG bytes, JSON) of its two downloads."""
    downloads = []

    def on_download(download):
        downloads.append(download)
    page.on("download", on_download)
    page.click("#capture")
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(downloads) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    page.remove_listener("download", on_download)
    assert len(downloads) == 2, [d.suggested_filename for d in downloads]
    saved = {}
    for d in downloads:
        path = os.path.join(outdir, d.suggested_filename)
        d.save_as(path)
        saved[os.path.splitext(path)[1]] = path
    with open(saved[".png"], "rb") as f, open(saved[".json"]) as g:
        return f.read(), json.load(g)


@pytest.mark.slow
def test_the_page_in_chromium(browser, server, tmp_path):
    url, ckpt, pkl = server
    page = browser.new_page(viewport={"width": 1040, "height": 800}, accept_downloads=True)
    page.goto(url)
    _settle(page)
    assert page.locator("#image").evaluate("img => img.naturalWidth") == 64

    page.fill("#seed", "4")
    page.press("#seed", "Tab")                      # change event: seed 4
    page.click("#seed-up")                          # seed 5
    page.focus("#psi")
    for _ in range(30):                             # psi 1.00 -> 0.70, one request per key: they coalesce
        page.keyboard.press("ArrowLeft")
    page.check("#mix")
    for field, value in (("#mix-seed", "7"), ("#mix-lo", "1"), ("#mix-hi", "3")):
        page.fill(field, value)
        page.press(field, "Tab")
    page.select_option("#layer", "blocks.3.conv1")
    _settle(page)
    shown = json.loads(page.evaluate("window.explore.shown"))
    assert (shown["x"], shown["psi"], shown["mix_seed"], shown["mix_lo"], shown["mix_hi"], shown["layer"]) == \
        (5, 0.7, 7, 1, 3, "blocks.3.conv1")
    assert page.is_visible("#layer-image") and "render" in page.inner_text("#status")
    frames_for_all_changes = page.evaluate("window.explore.frames")
    assert frames_for_all_changes < 1 + 2 + 30 + 4 + 1   # fewer frames than changes: no backlog was drawn

    artifacts = os.environ.get("GANOPS_ARTIFACTS") or str(tmp_path)
    os.makedirs(artifacts, exist_ok=True)
    page.screenshot(path=os.path.join(artifacts, "explore.png"))

    png, meta = _capture(page, tmp_path)
    assert meta["generate_command"] is None and "style mixing" in meta["not_reproducible"]
    assert meta["settings"]["mix_seed"] == 7 and meta["settings"]["psi"] == 0.7
    grid = style_mixing.style_mixing_grid(load_network(ckpt), [5], [7], [1, 2, 3], truncation_psi=0.7)
    with open(tmp_path / "captured.png", "wb") as f:
        f.write(png)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "captured.png")), grid[64:128, 64:128])

    page.uncheck("#mix")
    _settle(page)
    png, meta = _capture(page, tmp_path)
    assert meta["generate_file"] == "seed0005.png" and "--trunc" in meta["generate_command"]
    assert png == generated_png(meta, tmp_path / "generated")

    before = page.get_attribute("#image", "src")
    box = page.locator("#pad").bounding_box()        # drag the pad 25 px right: x 5 -> 5.25, a blend of seeds
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 65, box["y"] + 40, steps=5)
    page.mouse.up()
    _settle(page)
    assert json.loads(page.evaluate("window.explore.shown"))["x"] == pytest.approx(5.25)
    assert page.get_attribute("#image", "src") != before and page.input_value("#seed") == "5"

    frames = page.evaluate("window.explore.frames")
    page.check("#animate")                          # walks on by itself
    page.wait_for_function(f"window.explore.frames >= {frames + 3}", timeout=WAIT_MS)
    page.uncheck("#animate")
    _settle(page)
    assert json.loads(page.evaluate("window.explore.shown"))["x"] > 5.25

    page.select_option("#network", "2")             # the StyleGAN3 pickle (after the run's two checkpoints)
    page.wait_for_selector("#sg3-box", state="visible", timeout=WAIT_MS)
    _settle(page)
    before = page.get_attribute("#image", "src")
    page.focus("#rotate")
    page.keyboard.press("PageUp")
    _settle(page)
    assert page.get_attribute("#image", "src") != before and json.loads(page.evaluate("window.explore.shown"))["rotate"] != 0
    assert page.locator("#image").evaluate("img => img.naturalWidth") == 16
