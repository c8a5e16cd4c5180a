"""Pictures of trajectories: a PNG strip of frames and an animated GIF.

One fixed colour per state, so the same state looks the same in every picture.
Pillow only; nothing here imports torch.
"""

import numpy as np
from PIL import Image, ImageDraw

from generator.atomic import atomic_path

PALETTE = np.array(
    [
        (20, 20, 20), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
        (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (250, 250, 250),
    ],
    dtype=np.uint8,
)
GAP_COLOUR = (128, 128, 128)


def frame_image(frame: np.ndarray, cell_pixels: int = 8) -> Image.Image:
    """One (H, W) grid of colours as an RGB image, each cell a square of cell_pixels."""
    rgb = PALETTE[np.asarray(frame, dtype=np.int64)]
    rgb = rgb.repeat(cell_pixels, axis=0).repeat(cell_pixels, axis=1)
    return Image.fromarray(rgb, "RGB")


def strip_image(frames: np.ndarray, cell_pixels: int = 8, per_row: int = 9, gap: int = 2, title: str = "") -> Image.Image:
    """(F, H, W) frames laid out left to right, `per_row` to a row, under an optional title."""
    frames = np.asarray(frames)
    count, h, w = frames.shape
    rows = -(-count // per_row)
    tile_h, tile_w = h * cell_pixels + gap, w * cell_pixels + gap
    top = 14 if title else 0
    width = min(count, per_row) * tile_w + gap
    sheet = Image.new("RGB", (width, rows * tile_h + gap + top), GAP_COLOUR)  # grey: no state's colour
    for i, frame in enumerate(frames):
        sheet.paste(frame_image(frame, cell_pixels), (gap + (i % per_row) * tile_w, top + gap + (i // per_row) * tile_h))
    if title:
        draw = ImageDraw.Draw(sheet)
        draw.rectangle([0, 0, width, top - 1], fill=(255, 255, 255))
        draw.text((gap, 1), title, fill=(0, 0, 0))
    return sheet


def animation_frames(frames: np.ndarray, cell_pixels: int = 16) -> list:
    return [frame_image(frame, cell_pixels) for frame in np.asarray(frames)]


def save_atomically(image_or_frames, path: str, **gif_options) -> str:
    """Write a PNG (one image) or an animated GIF (a list of images) via a temporary name."""
    fmt = "GIF" if path.lower().endswith(".gif") else "PNG"
    with atomic_path(path) as temporary:
        if isinstance(image_or_frames, list):
            first, *rest = image_or_frames
            first.save(temporary, format=fmt, save_all=True, append_images=rest, loop=0, **gif_options)
        else:
            image_or_frames.save(temporary, format=fmt)
    return path


def write_trajectory_pictures(frames: np.ndarray, png_path: str, gif_path: str | None = None, title: str = "") -> None:
    save_atomically(strip_image(frames, title=title), png_path)
    if gif_path:
        save_atomically(animation_frames(frames), gif_path, duration=150)


def preview_image(trajectories: list, titles: list, cell_pixels: int = 4) -> Image.Image:
    """Several (F, H, W) trajectories as strips stacked top to bottom, each under its title."""
    strips = [strip_image(frames, cell_pixels, per_row=len(frames), title=title) for frames, title in zip(trajectories, titles)]
    sheet = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), (255, 255, 255))
    top = 0
    for strip in strips:
        sheet.paste(strip, (0, top))
        top += strip.height
    return sheet
