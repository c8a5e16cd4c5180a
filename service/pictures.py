"""Pictures of one row: an NCA row's frames as a PNG strip or an animated GIF; a Dyck row's depth profile.

Drawn with generator.render and generator.dyck.pictures (Pillow and numpy, no torch), so
the catalog shows exactly what the generators' own previews show.
"""

import io

from generator.config import DatasetConfig
from generator.dyck.config import DyckConfig
from generator.dyck.pictures import profile_image
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


def dyck_png(tokens, config: DyckConfig, title: str) -> bytes:
    """A Dyck row's depth after each token, coloured by bracket pair, under a title."""
    buffer = io.BytesIO()
    profile_image(tokens, config.pairs, config.max_depth, title).save(buffer, format="PNG")
    return buffer.getvalue()
