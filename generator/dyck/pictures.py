"""Pictures of Dyck sequences: the depth after every token, one column per position.

Each column is as tall as the nesting depth after that token and coloured by the token's
bracket pair, so words show as mountains, their limit as a flat top, and the pairs as
colour. Pillow and numpy only: the generator's preview.png and the catalog's row previews
draw with the same code.
"""

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from generator.dyck.words import depth_profile

PIXELS_PER_LEVEL = 4
TITLE_PIXELS = 14
BACKGROUND = (255, 255, 255)


def pair_colours(pairs: int) -> np.ndarray:
    """(pairs, 3) uint8: evenly spaced hues, so neighbouring pairs differ."""
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(i / pairs, 0.75, 0.85)] for i in range(pairs)],
                    dtype=np.uint8)


def profile_image(tokens, pairs: int, max_depth: int, title: str = "") -> Image.Image:
    """One sequence: width = its length, height = max_depth levels of PIXELS_PER_LEVEL, under a title."""
    tokens = np.asarray(tokens, dtype=np.int64)
    depth = np.clip(depth_profile(tokens, pairs), 0, max_depth)
    height = max_depth * PIXELS_PER_LEVEL
    level = (height - np.arange(height))[:, None]  # pixel row -> the level it draws, top = max_depth
    filled = level <= depth[None, :] * PIXELS_PER_LEVEL
    colours = pair_colours(pairs)[tokens % pairs]
    plot = np.where(filled[:, :, None], colours[None, :, :], np.array(BACKGROUND, dtype=np.uint8))
    top = TITLE_PIXELS if title else 0
    image = Image.new("RGB", (len(tokens), height + top + 1), BACKGROUND)
    image.paste(Image.fromarray(plot.astype(np.uint8), "RGB"), (0, top))
    draw = ImageDraw.Draw(image)
    draw.line([0, top + height, len(tokens), top + height], fill=(0, 0, 0))
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0))
    return image


def preview_image(rows, pairs: int, max_depth: int, titles: list) -> Image.Image:
    """Several sequences' profiles stacked top to bottom, each under its title."""
    panels = [profile_image(tokens, pairs, max_depth, title) for tokens, title in zip(rows, titles)]
    sheet = Image.new("RGB", (max(p.width for p in panels), sum(p.height + 4 for p in panels)), BACKGROUND)
    top = 0
    for panel in panels:
        sheet.paste(panel, (0, top))
        top += panel.height + 4
    return sheet
