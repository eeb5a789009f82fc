"""metrics.png: one panel per main metric (names without '/', e.g. fid50k_full, swd) of value
against kimg, drawn with PIL (no matplotlib).  KID panels show +-std whiskers from '<name>/std'."""
import os

from PIL import Image, ImageDraw, ImageFont

from ganops_models.files import atomic_write
from ganops_models.metrics.report import read_metrics_jsonl, series

PANEL_W, PANEL_H = 480, 260
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 70, 20, 30, 40
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def _ticks(lo, hi, n=5):
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _fmt(v):
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def panel(draw, font, ox, oy, name, points, std, color, xlabel="kimg"):
    """One line plot of ``points`` [(x, y)] with +-``std`` {x: s} whiskers, at (ox, oy)."""
    x0, y0 = ox + MARGIN_L, oy + MARGIN_T
    x1, y1 = ox + PANEL_W - MARGIN_R, oy + PANEL_H - MARGIN_B
    draw.text((ox + MARGIN_L, oy + 8), name, fill=(0, 0, 0), font=font)
    xs = [p[0] for p in points]
    lows = [v - std.get(k, 0.0) for k, v in points]
    highs = [v + std.get(k, 0.0) for k, v in points]
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(lows), max(highs)
    xpad = (xhi - xlo) * 0.04 or 0.5
    xlo, xhi = xlo - xpad, xhi + xpad
    pad = (yhi - ylo) * 0.05 or max(abs(yhi) * 0.05, 1e-6)
    ylo, yhi = ylo - pad, yhi + pad

    def px(k, v):
        return x0 + (k - xlo) / (xhi - xlo) * (x1 - x0), y1 - (v - ylo) / (yhi - ylo) * (y1 - y0)

    for t in _ticks(ylo, yhi):
        _, y = px(xlo, t)
        draw.line([x0 - 4, y, x0, y], fill=(0, 0, 0))
        draw.line([x0 + 1, y, x1 - 1, y], fill=(225, 225, 225))
        draw.text((ox + 4, y - 6), _fmt(t), fill=(0, 0, 0), font=font)
    for t in _ticks(xlo, xhi):
        x, _ = px(t, ylo)
        draw.line([x, y1, x, y1 + 4], fill=(0, 0, 0))
        draw.text((x - 12, y1 + 6), _fmt(t), fill=(0, 0, 0), font=font)
    draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    draw.text((x1 - 30, y1 + 22), xlabel, fill=(0, 0, 0), font=font)
    coords = [px(k, v) for k, v in points]
    for (k, v), (x, _) in zip(points, coords):
        if k in std:
            draw.line([x, px(k, v - std[k])[1], x, px(k, v + std[k])[1]], fill=color)
    if len(coords) > 1:
        draw.line(coords, fill=color, width=2)
    for x, y in coords:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)


def plot_metrics(jsonl_path, png_path):
    """Render metrics.jsonl to png_path (atomic write); returns the list of plotted metric names
    (an empty file gives a placeholder image)."""
    all_series = series(read_metrics_jsonl(jsonl_path))
    names = sorted(n for n in all_series if "/" not in n)
    font = ImageFont.load_default()
    cols = 2 if len(names) > 1 else 1
    rows = max(1, (len(names) + cols - 1) // cols)
    img = Image.new("RGB", (PANEL_W * cols, PANEL_H * rows), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    if not names:
        draw.text((20, PANEL_H // 2), f"no metric values in {os.path.basename(jsonl_path)} yet", fill=(0, 0, 0), font=font)
    for i, name in enumerate(names):
        std = dict(all_series.get(name + "/std", []))
        panel(draw, font, (i % cols) * PANEL_W, (i // cols) * PANEL_H, name, all_series[name], std,
               COLORS[i % len(COLORS)])
    with atomic_write(png_path) as fh:
        img.save(fh, format="PNG")
    return names
