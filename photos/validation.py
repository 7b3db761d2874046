"""Checking an uploaded file before anything is stored: size, format, pixel count read
from the header before any pixel is decoded (decompression bombs), a full decode
(truncation), and markup that would make it a polyglot. Shared by the upload form, the
API and the direct-upload confirmation."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from infra.functions.labeler.rendition import register_decoders

from .models import ACCEPTED_NAMES, EXTENSIONS


@dataclass(frozen=True)
class CheckedUpload:
    """An uploaded file that passed validation, with what validation learned."""

    file: UploadedFile
    original_filename: str
    format: str
    width: int
    height: int
    sha256: str
    size: int


class UploadRejected(Exception):
    def __init__(self, filename: str, message: str):
        super().__init__(message)
        self.filename = filename
        self.message = message


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)
# Markup that turns an image into a polyglot a browser or server might execute. Real
# photos' compressed data practically never contains these byte strings.
# Matched against lower-cased bytes: a case-insensitive pattern is ~3x slower, and this
# runs over every byte of every upload.
_MARKUP = re.compile(
    rb"<\s*(?:script|html|svg|iframe|object|embed|body|\?php)\b|javascript:"
    # Short tag names would match compressed data by chance; these need their attribute.
    rb"|<\s*img\b[^>]{0,300}?\bon[a-z]+\s*=|<\s*meta\b[^>]{0,300}?\bhttp-equiv|\bon(?:error|load)\s*="
)


def clean_filename(name: str) -> str:
    """A display-only version of the user's filename: no path, no control or markup
    characters, at most 200 characters. It never reaches a storage key."""
    name = unicodedata.normalize("NFKC", name or "")
    name = PurePosixPath(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or "photo"


def megapixels(pixels: int) -> str:
    """"50 MP", "12 MP", "0.3 MP": whole numbers unless that would say 0."""
    return f"{pixels / 1e6:.0f} MP" if pixels >= 1e6 else f"{pixels / 1e6:.1f} MP"


def check_upload(upload) -> CheckedUpload:
    """Validate one uploaded file; raise UploadRejected with a message for the user.

    Order matters: cheap checks first, and the pixel count is read from the header
    before any pixel is decoded, which is what stops decompression bombs."""
    filename = clean_filename(upload.name)
    size = upload.size or 0
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    if size == 0:
        raise UploadRejected(filename, "is empty (0 bytes).")
    if size > limit:
        raise UploadRejected(filename, f"is {filesizeformat(size)}; the limit is {filesizeformat(limit)}.")
    upload.seek(0)
    register_decoders()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(upload)
            fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError:
        raise UploadRejected(
            filename, f"has far too many pixels; the limit is {megapixels(settings.PHOTOS_MAX_PIXELS)}."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UploadRejected(filename, f"is not an image we can read; upload {ACCEPTED_NAMES} photos.") from None
    if fmt not in EXTENSIONS:
        raise UploadRejected(filename, f"is a {fmt} image; upload {ACCEPTED_NAMES} photos.")
    min_side = settings.PHOTOS_MIN_SIDE
    if min(width, height) < min_side:
        # Rekognition refuses images under 80 px a side, and no detector sees much in them.
        raise UploadRejected(filename, f"is {width}×{height} pixels; photos must be at least {min_side} pixels on each side.")
    max_pixels = settings.PHOTOS_MAX_PIXELS
    if width * height > max_pixels:
        raise UploadRejected(
            filename,
            f"is {width}×{height} pixels ({megapixels(width * height)}); the limit is {megapixels(max_pixels)}.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if fmt in ("JPEG", "MPO"):
                # Decoding at 1/8 scale still reads every byte of the entropy-coded
                # data, so truncation is caught at a fraction of a full decode's cost.
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UploadRejected(filename, "is truncated or corrupt.") from None
    digest = hashlib.sha256()
    upload.seek(0)
    tail = b""
    for chunk in upload.chunks():
        digest.update(chunk)
        # Overlap chunks so a marker split across two of them is still seen.
        if _MARKUP.search((tail + chunk).lower()):
            raise UploadRejected(filename, "contains web page or script content; upload a plain photo.")
        tail = chunk[-32:]
    upload.seek(0)
    return CheckedUpload(
        file=upload, original_filename=filename, format=fmt, width=width, height=height,
        sha256=digest.hexdigest(), size=size,
    )
