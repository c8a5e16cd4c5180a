"""Pictures of one row: all its frames as a PNG strip, or as an animated GIF.

Drawn with generator.render (Pillow and numpy, no torch), so the catalog shows
exactly what the generator's own previews show, one fixed colour per cell state.
"""

import io

from generator.config import DatasetConfig
from generator.format import decode_frames
from generator.render import animation_frames, strip_image

GIF_FRAME_MILLISECONDS = 150  # the generator's own GIFs use the same pace


def frames_of(tokens, config: DatasetConfig):
    """(frames, H, W) colours of one row's tokens, with the grid size the dataset was made with."""
    return decode_frames(tokens, config.generator.nca.grid_size)


def strip_png(frames, title: str) -> bytes:
    buffer = io.BytesIO()
    strip_image(frames, title=title).save(buffer, format="PNG")
    return buffer.getvalue()


def animation_gif(frames) -> bytes:
    first, *rest = animation_frames(frames)
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=rest, loop=0, duration=GIF_FRAME_MILLISECONDS)
    return buffer.getvalue()
