"""Analysis renditions: a JPEG inside Rekognition's limits for an image it cannot read
as stored (over 15 MB, over 10,000 px a side, or not JPEG/PNG: WebP, AVIF, HEIC).

Pillow is imported when a rendition is made, not with the module: the web app has it,
and the labeler gets it from its dependencies layer (infra/constructs/labeler.py).
The same function makes the app's thumbnails and display renditions, so an image is
turned upright and flattened the same way wherever it is analysed or shown.
"""

from __future__ import annotations

import io
from typing import IO, Any

# Rekognition's documented limits: 15 MB from S3, 5 MB as Bytes, 80-10,000 px a side,
# JPEG or PNG.
S3_OBJECT_LIMIT = 15 * 1024 * 1024
BYTES_LIMIT = 5 * 1024 * 1024
MAX_SIDE = 10_000
ANALYSABLE_FORMATS = frozenset({"JPEG", "PNG"})
# The rendition: as the local worker makes it, then smaller until it fits in Bytes.
RENDITION_SIDE = 4096
RENDITION_QUALITY = 90
FALLBACKS = ((RENDITION_SIDE, 80), (3072, 80), (2048, 80))


class RenditionError(Exception):
    """The image cannot be rendered: ``code`` says why (on the FAILED record)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def register_decoders() -> None:
    """Teach Pillow the formats it does not read by itself: HEIC/HEIF (the iPhone's
    default) through pi-heif, the decode-only build of pillow-heif (libheif + libde265,
    LGPL; no x265 encoder: a quarter of pillow-heif's size). AVIF and MPO Pillow reads.
    Idempotent: the web app calls it at start-up (photos/apps.py) and every rendition
    before it opens an image (which is how the labeler gets it)."""
    global _REGISTERED
    if not _REGISTERED:
        import pi_heif

        # Decoded HEIF images come upright (libheif applies irot/imir) and pi-heif
        # resets the EXIF orientation to 1, so exif_transpose never turns them twice.
        pi_heif.register_heif_opener(thumbnails=False)
        _REGISTERED = True


_REGISTERED = False


def needs_rendition(key: str, size: int) -> bool:
    """Known before reading the object: not JPEG/PNG by name, or too big to read from S3.
    (Too many pixels is only known from the image: Rekognition's rejection says so.)"""
    return not key.lower().endswith((".jpg", ".jpeg", ".png")) or size > S3_OBJECT_LIMIT


def upright_jpeg(source: IO[bytes], *, side: int, quality: int, max_pixels: int | None = None) -> bytes:
    """``source`` as a JPEG of at most ``side`` pixels a side: EXIF orientation applied,
    transparency flattened on white, and none of the upload's metadata (EXIF, XMP, IPTC,
    comments, text chunks: no GPS position leaks). ``max_pixels`` refuses larger images
    before they are decoded."""
    return _jpeg(upright_image(source, side=side, max_pixels=max_pixels), quality)


def upright_image(source: IO[bytes], *, side: int, max_pixels: int | None = None) -> Any:
    """The decoded RGB image, at most ``side`` pixels a side, upright, with no metadata.

    Memory stays near one decoded copy: JPEG decodes at a reduced scale (draft), and the
    image is shrunk before it is turned or flattened (each of which copies it)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    register_decoders()
    try:
        img = Image.open(source)
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow's own limit, over ~179 MP
        raise RenditionError("TooManyPixels", str(exc)) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise RenditionError("UnreadableImage", f"not an image Pillow can read: {exc}") from None
    if max_pixels is not None and img.width * img.height > max_pixels:
        raise RenditionError("TooManyPixels", f"{img.width}x{img.height} is over {max_pixels / 1e6:.0f} MP")
    try:
        img.draft("RGB", (side * 2, side * 2))  # JPEG: decode at reduced scale
        exif = img.getexif()
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
        if exif:
            img.info["exif"] = exif.tobytes()
        img = flatten(ImageOps.exif_transpose(img))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenditionError("UnreadableImage", f"the image could not be decoded: {exc}") from None
    # Pillow carries some of im.info into the JPEG it writes (a JPEG COM comment, a PNG
    # text chunk): nothing of the upload's metadata goes along.
    img.info = {}
    return img


def _jpeg(img: Any, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)  # no exif=/comment=/icc_profile=
    return buf.getvalue()


def flatten(img: Any) -> Any:
    """RGB, with transparency composited on white (usually paper, not black)."""
    from PIL import Image

    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def analysis_rendition(data: bytes, *, max_pixels: int) -> bytes:
    """A JPEG Rekognition takes as Bytes (at most 5 MB), from any image Pillow reads:
    decoded once, then encoded smaller until it fits."""
    from PIL import Image

    img = upright_image(io.BytesIO(data), side=RENDITION_SIDE, max_pixels=max_pixels)
    jpeg = _jpeg(img, RENDITION_QUALITY)
    for side, quality in FALLBACKS:
        if len(jpeg) <= BYTES_LIMIT:
            return jpeg
        if max(img.size) > side:
            img.thumbnail((side, side), Image.Resampling.LANCZOS)
        jpeg = _jpeg(img, quality)
    if len(jpeg) > BYTES_LIMIT:
        raise RenditionError("ImageTooLarge", f"even a {FALLBACKS[-1][0]} px rendition is {len(jpeg)} bytes")
    return jpeg
