"""A complexity histogram as a PNG, drawn with Pillow (no plotting stack to install)."""

import numpy as np
from PIL import Image, ImageDraw

from generator.render import save_atomically


def histogram_image(counts, edges, band=None, title: str = "", width: int = 640, height: int = 320) -> Image.Image:
    """Bars of `counts` over bin `edges` in [0, 1]; the band's interval is shaded."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    left, right, top, bottom = 48, 16, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    x_of = lambda v: left + (v - edges[0]) / (edges[-1] - edges[0]) * plot_w
    share = counts / max(counts.sum(), 1.0)
    peak = max(share.max(), 1e-9)
    if band is not None:
        draw.rectangle([x_of(max(band.lo, edges[0])), top, x_of(min(band.hi, edges[-1])), top + plot_h], fill=(255, 236, 200))
    for lo, hi, s in zip(edges[:-1], edges[1:], share):
        bar_top = top + plot_h * (1 - s / peak)
        inside = band is not None and band.lo < (lo + hi) / 2 < band.hi
        draw.rectangle([x_of(lo) + 1, bar_top, x_of(hi) - 1, top + plot_h], fill=(0, 110, 190) if inside else (150, 150, 150))
    if band is not None:
        label = f"band {band.name}: {band.lo:g} < ratio < {band.hi:g}"
        draw.text((x_of(min(band.hi, edges[-1])) - 6 * len(label) - 4, top + 2), label, fill=(160, 90, 0))
    draw.line([left, top + plot_h, left + plot_w, top + plot_h], fill=(0, 0, 0))
    for tick in np.linspace(edges[0], edges[-1], 11):
        draw.line([x_of(tick), top + plot_h, x_of(tick), top + plot_h + 4], fill=(0, 0, 0))
        draw.text((x_of(tick) - 8, top + plot_h + 8), f"{tick:.1f}", fill=(0, 0, 0))
    draw.text((4, top - 2), f"{peak:.0%}", fill=(0, 0, 0))
    draw.text((left, 6), title or "share of candidate rules per gzip ratio bin", fill=(0, 0, 0))
    draw.text((left + plot_w // 2 - 30, height - 14), "gzip ratio", fill=(0, 0, 0))
    return image


def save_histogram(counts, edges, path: str, band=None, title: str = "") -> str:
    return save_atomically(histogram_image(counts, edges, band, title), path)
