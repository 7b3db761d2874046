"""The real photos that ship inside scikit-image and matplotlib, and helpers that
make test images in memory."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import skimage
from PIL import Image, ImageDraw, ImageFont

SKIMAGE_DATA = Path(os.path.dirname(skimage.__file__)) / "data"
MPL_DATA = Path(os.path.dirname(matplotlib.__file__)) / "mpl-data"

PHOTOS = {
    "astronaut": SKIMAGE_DATA / "astronaut.png",
    "chelsea": SKIMAGE_DATA / "chelsea.png",
    "coffee": SKIMAGE_DATA / "coffee.png",
    "rocket": SKIMAGE_DATA / "rocket.jpg",
    "motorcycle": SKIMAGE_DATA / "motorcycle_left.png",
    "camera": SKIMAGE_DATA / "camera.png",
    "page": SKIMAGE_DATA / "page.png",
    "grace_hopper": MPL_DATA / "sample_data" / "grace_hopper.jpg",
}
FONT = MPL_DATA / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def photo_bytes(name: str) -> bytes:
    return PHOTOS[name].read_bytes()


def encode(img: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def heic(img: Image.Image, *, exif: bytes | None = None, quality: int = 85) -> bytes:
    """``img`` as an iPhone-style HEIC (HEVC in an HEIF container), encoded with
    pillow-heif (a test-only dependency: the app decodes with pi-heif and never encodes)."""
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(img.convert("RGB")).save(buf, quality=quality, **({"exif": exif} if exif else {}))
    return buf.getvalue()


def mpo(img: Image.Image, second: Image.Image) -> bytes:
    """A JPEG holding a second picture (Multi-Picture Object), as many phones write."""
    return encode(img.convert("RGB"), "MPO", save_all=True, append_images=[second.convert("RGB")], quality=90)


def photo_with_text(text: str = "OPEN DAILY 9 TO 5", *, base: str = "coffee", xy=(40, 40), size: int = 44):
    """A real photo with a line of text rendered on a light band, as on a sign.

    Returns (jpeg bytes, (left, top, right, bottom) of the text as fractions)."""
    img = Image.open(PHOTOS[base]).convert("RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), size)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 12, top - 10, right + 12, bottom + 10), fill=(245, 240, 225))
    draw.text(xy, text, font=font, fill=(20, 20, 20))
    w, h = img.size
    return encode(img, quality=90), (left / w, top / h, right / w, bottom / h)
