"""Decoding uploaded bytes into the working image the detectors share.

Limits mirror Amazon Rekognition's, so that an image the local pipeline accepts is one
AWS would accept too: JPEG or PNG only, 80 to 10,000 pixels a side. The header is read
before any pixel is decoded, which is what makes decompression bombs cheap to refuse.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from infra.functions.labeler.rendition import flatten

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
MIN_SIDE = 80
MAX_SIDE = 10_000
# Detectors never need more than this: OCR crops come from this image, the
# detection models see far smaller versions of it.
WORK_MAX_SIDE = 1600


class ImageInputError(ValueError):
    """The bytes are not an image Rekognition would analyse; ``code`` is its error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WorkingImage:
    rgb: np.ndarray  # H x W x 3, uint8, EXIF orientation applied
    original_width: int
    original_height: int
    format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def probe(data: bytes) -> tuple[str, int, int]:
    """Format and size from the header alone, refusing what Rekognition refuses."""
    if not data:
        raise ImageInputError("InvalidImageFormatException", "The image is empty.")
    try:
        with warnings.catch_warnings():
            # Sizes are checked below against Rekognition's limit; Pillow's own
            # warning threshold (89 MP) sits under it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageInputError("ImageTooLargeException", f"Image has too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageInputError(
            "InvalidImageFormatException", f"Not a readable image: {exc}"
        ) from None
    if img.format not in ACCEPTED_FORMATS:
        raise ImageInputError(
            "InvalidImageFormatException",
            f"Unsupported image format {img.format}; only JPEG and PNG are analysed.",
        )
    width, height = img.size
    if max(width, height) > MAX_SIDE:
        raise ImageInputError(
            "ImageTooLargeException",
            f"Image is {width}x{height}; at most {MAX_SIDE} pixels a side.",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            "InvalidParameterException",
            f"Image is {width}x{height}; at least {MIN_SIDE} pixels a side.",
        )
    return img.format, width, height


def decode(data: bytes, *, max_side: int = WORK_MAX_SIDE) -> WorkingImage:
    """Decode to an RGB array no larger than ``max_side``, orientation applied."""
    fmt, width, height = probe(data)
    try:
        with warnings.catch_warnings():
            # probe() already bounded the size at 10,000 x 10,000.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if fmt == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: a 12 MP photo then
                # costs a fraction of the time and memory of a full decode.
                img.draft("RGB", (max_side, max_side))
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode != "RGB":
                img = flatten(img)
            if max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = np.asarray(img, dtype=np.uint8)
    except ImageInputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Truncated files surface here ("image file is truncated").
        raise ImageInputError("InvalidImageFormatException", f"Cannot decode image: {exc}") from None
    return WorkingImage(rgb=rgb, original_width=width, original_height=height, format=fmt)

