"""Checking an uploaded file before anything is stored: size, format, pixel count read
from the header before any pixel is decoded (decompression bombs), a full decode
(truncation), and markup that would make it a polyglot. Shared by the upload form, the
API and the direct-upload confirmation."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone as dt_timezone
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings

from infra.functions.labeler.video_jobs import is_video
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from infra.functions.labeler.rendition import register_decoders

from .models import ACCEPTED_NAMES, ACCEPTED_VIDEO_NAMES, EXTENSIONS, Photo
from .video import VideoError, VideoProbe, looks_like_video
from .video import probe as probe_video


@dataclass(frozen=True)
class ProbedUpload:
    """What the cheap checks learned (header, size, hash, markup scan): enough to refuse
    a duplicate before the expensive full decode."""

    file: UploadedFile
    original_filename: str
    format: str
    width: int
    height: int
    sha256: str
    size: int
    video: VideoProbe | None = None  # what the container says, for a video


@dataclass(frozen=True)
class CheckedUpload(ProbedUpload):
    """An uploaded file that passed validation, with what validation learned (width and
    height as displayed, after EXIF rotation)."""

    # From EXIF: when it was taken (the camera's wall clock, naive) and the camera's UTC
    # offset in minutes; None when the file does not say.
    taken_at: datetime | None = None
    taken_offset: int | None = None

    def taken_fields(self) -> dict:
        """The Photo fields for when it was taken: the camera's wall clock stored as UTC,
        or, when the file has no date, now (the upload), marked as such."""
        if self.taken_at is None:
            return {"taken_at": timezone.now(), "taken_from": Photo.TakenFrom.UPLOAD, "taken_offset": None}
        return {"taken_at": self.taken_at.replace(tzinfo=dt_timezone.utc), "taken_from": Photo.TakenFrom.CAMERA,
                "taken_offset": self.taken_offset}


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
    # Any tag with an event handler (<img onerror=, <details open ontoggle=): a tag name,
    # then an on... attribute within 300 bytes (no match in 200 MB of random bytes, nor in
    # the sample photos).
    rb"|<\s*[a-z][a-z0-9]*\b[^>]{0,300}?\bon[a-z]{4,}\s*="
    rb"|<\s*meta\b[^>]{0,300}?\bhttp-equiv|\bon(?:error|load)\s*="
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


EXIF_IFD = 0x8769
DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED = 0x9003, 0x9004
OFFSET_TIME_ORIGINAL, OFFSET_TIME_DIGITIZED = 0x9011, 0x9012
ORIENTATION = 0x0112
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def exif_taken(exif) -> tuple[datetime | None, int | None]:
    """When the camera says the photo was taken: DateTimeOriginal (else DateTimeDigitized)
    as its wall clock read, and OffsetTimeOriginal as minutes east of UTC. Blank, zeroed
    or impossible dates ("0000:00:00 00:00:00", year 1904, a month 13) count as none."""
    try:
        tags = exif.get_ifd(EXIF_IFD)
    except (KeyError, TypeError, ValueError, OSError, SyntaxError):
        return None, None
    for date_tag, offset_tag in ((DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL), (DATE_TIME_DIGITIZED, OFFSET_TIME_DIGITIZED)):
        raw = tags.get(date_tag)
        if not isinstance(raw, str):
            continue
        try:
            taken = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        if not 1990 <= taken.year <= datetime.now().year + 1:  # before digital cameras, or a clock never set
            continue
        offset = _OFFSET.match(str(tags.get(offset_tag) or "").strip("\x00 "))
        minutes = None
        if offset:
            minutes = (int(offset[2]) * 60 + int(offset[3])) * (-1 if offset[1] == "-" else 1)
            minutes = minutes if abs(minutes) <= 14 * 60 else None
        return taken, minutes
    return None, None


def megapixels(pixels: int) -> str:
    """"50 MP", "12 MP", "0.3 MP": whole numbers unless that would say 0."""
    return f"{pixels / 1e6:.0f} MP" if pixels >= 1e6 else f"{pixels / 1e6:.1f} MP"


# The longest text _MARKUP can match: chunks overlap by this much, so a marker split
# across two chunks (at a 64 KiB boundary) is still seen whole in one of them.
MARKUP_OVERLAP = 1024


def check_upload(upload) -> CheckedUpload:
    """Validate one uploaded file; raise UploadRejected with a message for the user."""
    return finish_upload(probe_upload(upload))


def probe_upload(upload) -> ProbedUpload:
    """The cheap checks, before any pixel is decoded: size, format and pixel count from
    the header (which is what stops decompression bombs), the SHA-256 (for the duplicate
    check, which callers make next) and markup anywhere in the bytes (polyglots)."""
    filename = clean_filename(upload.name)
    size = upload.size or 0
    if size == 0:
        raise UploadRejected(filename, "is empty (0 bytes).")
    upload.seek(0)
    if looks_like_video(upload.read(16)):
        return _probe_video(upload, filename, size)
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    if size > limit:
        raise UploadRejected(filename, f"is {filesizeformat(size)}; the limit is {filesizeformat(limit)}.")
    fmt, width, height = _header(upload, filename)
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
    return ProbedUpload(file=upload, original_filename=filename, format=fmt, width=width, height=height,
                        sha256=_scan(upload, filename), size=size)


def _scan(upload, filename: str, *, markup: bool = True) -> str:
    """The SHA-256 of the bytes, read in chunks (never the whole file in memory), with a
    look for markup in each (polyglots) unless ``markup`` is False."""
    digest = hashlib.sha256()
    upload.seek(0)
    tail = b""
    for chunk in upload.chunks():
        digest.update(chunk)
        if markup and _MARKUP.search((tail + chunk).lower()):
            raise UploadRejected(filename, "contains web page or script content; upload a plain photo or video.")
        tail = chunk[-MARKUP_OVERLAP:]
    upload.seek(0)
    return digest.hexdigest()


def _probe_video(upload, filename: str, size: int) -> ProbedUpload:
    """A video: its size, then what its container says and one frame at each end
    (photos/video.py), then the hash. No markup scan: a video is only ever served as
    video/* with nosniff (never as a document), and over a gigabyte of compressed data
    the pattern's short tags ("<svg") turn up by chance about once (they did in a 512 MB
    test), which would refuse good videos. A large upload is on disk (Django's temporary
    file): it is read from there, never held whole in memory."""
    limit = settings.PHOTOS_MAX_VIDEO_BYTES
    if size > limit:
        raise UploadRejected(filename, f"is {filesizeformat(size)}; the limit for videos is {filesizeformat(limit)}.")
    source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
    try:
        probed = probe_video(source, max_seconds=settings.PHOTOS_MAX_VIDEO_SECONDS,
                             max_pixels=settings.PHOTOS_MAX_VIDEO_PIXELS, min_side=settings.PHOTOS_MIN_SIDE)
    except VideoError as exc:
        raise UploadRejected(filename, f"{exc.message} Upload {ACCEPTED_VIDEO_NAMES} videos.") from None
    return ProbedUpload(file=upload, original_filename=filename, format=probed.container, width=probed.width,
                        height=probed.height, sha256=_scan(upload, filename, markup=False), size=size, video=probed)


def _header(upload, filename: str) -> tuple[str, int, int]:
    """Format and size from the file's header (no pixel decoded)."""
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
        if is_video(filename):  # named a video, and not one
            raise UploadRejected(filename, f"is not a video we can read (corrupt, or not a video). Upload "
                                           f"{ACCEPTED_VIDEO_NAMES} videos.") from None
        raise UploadRejected(filename, f"is not an image we can read; upload {ACCEPTED_NAMES} photos or "
                                       f"{ACCEPTED_VIDEO_NAMES} videos.") from None
    if fmt not in EXTENSIONS:
        raise UploadRejected(filename, f"is a {fmt} image; upload {ACCEPTED_NAMES} photos.")
    return fmt, width, height


def finish_upload(probed: ProbedUpload) -> CheckedUpload:
    """The expensive check: a full decode (truncation, corruption), and what EXIF says
    (when it was taken, how it is turned)."""
    upload, filename, width, height = probed.file, probed.original_filename, probed.width, probed.height
    if probed.video is not None:  # decoded at both ends by the probe already
        return CheckedUpload(file=upload, original_filename=filename, format=probed.format, width=width,
                             height=height, sha256=probed.sha256, size=probed.size, video=probed.video)
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(upload)
            if probed.format in ("JPEG", "MPO"):
                # Decoding at 1/8 scale still reads every byte of the entropy-coded
                # data, so truncation is caught at a fraction of a full decode's cost.
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UploadRejected(filename, "is truncated or corrupt.") from None
    exif = img.getexif()
    taken_at, taken_offset = exif_taken(exif)
    if exif.get(ORIENTATION) in (5, 6, 7, 8):  # shown turned a quarter: as displayed, not as stored
        width, height = height, width
    upload.seek(0)
    return CheckedUpload(
        file=upload, original_filename=filename, format=probed.format, width=width, height=height,
        sha256=probed.sha256, size=probed.size, taken_at=taken_at, taken_offset=taken_offset,
    )
