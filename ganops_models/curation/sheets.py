"""Pictures of a clustering: contact sheets of cluster members and the elbow plot (PIL only)."""
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganops_models.files import atomic_write
from ganops_models.data import image as im
from ganops_models.metrics.plot import COLORS, PANEL_H, PANEL_W, panel


def _save(img: Image.Image, path: str) -> None:
    with atomic_write(path) as fh:
        img.save(fh, format="PNG")


def contact_sheet(source, names, path: str, tile: int = 96, columns: int = 6) -> None:
    """A grid of ``names`` of ``source`` (centre-cropped to tile x tile) written to ``path``; files that
    fail to decode are shown as grey tiles."""
    rows = max(1, math.ceil(len(names) / columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), (128, 128, 128))
    for i, name in enumerate(names):
        try:
            with source.open(name) as fh:
                arr = im.fit(im.decode(fh), (tile, tile), "center-crop")
        except Exception:  # noqa: BLE001 - a sheet is a preview; the tile stays grey
            continue
        sheet.paste(Image.fromarray(arr), ((i % columns) * tile, (i // columns) * tile))
    _save(sheet, path)


def elbow_plot(results, path: str) -> None:
    """Inertia and silhouette against k; ``results`` = [(k, Clustering, silhouette)]."""
    font = ImageFont.load_default()
    img = Image.new("RGB", (PANEL_W * 2, PANEL_H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    panel(draw, font, 0, 0, "inertia", [(k, c.inertia) for k, c, _ in results], {}, COLORS[0], xlabel="k")
    sil = [(k, s) for k, _, s in results if np.isfinite(s)]
    if sil:
        panel(draw, font, PANEL_W, 0, "silhouette", sil, {}, COLORS[1], xlabel="k")
    _save(img, path)
