"""A small image set of another kind than Omniglot, made on the spot from files already installed.

:func:`typeset_digits` renders the ten digits 0-9 in the 20 typefaces that matplotlib ships
(DejaVu Sans / Sans Mono / Serif in four styles each, STIX in four, Computer Modern in four):
10 classes × 20 examples of 28×28 uint8 images, ink = 255 like Omniglot. Nothing is downloaded.
Chapter 8 tests an Omniglot-trained embedding on them: printed digits are new classes (Omniglot
has no digits), drawn by type designers instead of pen strokes, with serifs and bold strokes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from course_utils.validation import check_int

__all__ = ["TYPEFACES", "typeset_digits"]

#: The 20 typefaces (file names in matplotlib's ``mpl-data/fonts/ttf``), one example per class each.
TYPEFACES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf",
)


def _render(font, char: str, size: int, scale: int = 4) -> np.ndarray:
    from PIL import Image, ImageDraw

    big = size * scale
    canvas = Image.new("L", (2 * big, 2 * big), 0)
    ImageDraw.Draw(canvas).text((big // 2, big // 2), char, fill=255, font=font)
    box = canvas.getbbox()
    glyph = canvas.crop(box)
    side = max(glyph.size)
    target = int(round(0.72 * big))  # the glyph's longer side fills ~72 % of the frame, as in Omniglot
    w, h = (max(1, round(glyph.size[0] * target / side)), max(1, round(glyph.size[1] * target / side)))
    glyph = glyph.resize((w, h), Image.LANCZOS)
    frame = Image.new("L", (big, big), 0)
    frame.paste(glyph, ((big - w) // 2, (big - h) // 2))
    return np.asarray(frame.resize((size, size), Image.BOX), dtype=np.uint8)


def typeset_digits(image_size: int = 28) -> np.ndarray:
    """The digits 0-9 in :data:`TYPEFACES`: uint8 (10, 20, S, S), ink = 255, class k = digit k.

    Args:
        image_size: side S of the images (8..105; 28 matches the course's Omniglot).
    """
    import matplotlib
    from PIL import ImageFont

    size = check_int(image_size, "image_size", 8, 105)
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [ImageFont.truetype(str(folder / name), size=3 * size) for name in TYPEFACES]
    return np.stack([np.stack([_render(f, str(d), size) for f in fonts]) for d in range(10)])
