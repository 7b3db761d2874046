"""What the app makes from a stored photo: its thumbnail and the display rendition that
everyone but its owner is served. Both are upright JPEGs with none of the upload's
metadata (no EXIF, XMP or IPTC: no GPS position, camera, serial number or timestamps),
made by the same code as the labeler's analysis renditions."""

from __future__ import annotations

import io
import json
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile

from infra.functions.labeler.rendition import RenditionError, upright_jpeg
from infra.resources import RENDITION_PREFIX  # the web app's S3 policy grants this prefix

from . import video
from .models import Photo, thumbnail_upload_to

logger = logging.getLogger(__name__)

THUMBNAIL_SIDE = 640
DISPLAY_SIDE = 2048
RENDITION_CACHE_SECONDS = 24 * 3600

__all__ = ["RenditionError", "display_rendition_name", "make_thumbnail", "photo_display_rendition",
           "photo_make_thumbnail", "photo_timeline", "save_timeline", "timeline_name"]


def _upright_jpeg(photo: Photo, *, side: int, quality: int) -> bytes:
    """The photo as a JPEG of at most ``side`` pixels a side, upright, flattened, and
    with none of the upload's metadata; for a video, its poster frame."""
    if photo.is_video:
        return _poster_jpeg(photo, side=side, quality=quality)
    with photo.image.open("rb") as handle:
        return upright_jpeg(handle, side=side, quality=quality, max_pixels=2 * settings.PHOTOS_MAX_PIXELS)


def _poster_jpeg(photo: Photo, *, side: int, quality: int) -> bytes:
    """The video's poster (the sharpest lit keyframe, upright) as a metadata-free JPEG;
    its time is kept on the photo."""
    with photo.image.open("rb") as handle:
        try:
            probed = video.probe(handle, max_seconds=float("inf"), max_pixels=10**9, min_side=1)
            image, at_ms = video.poster(handle, probed, side=side)
        except video.VideoError as exc:
            raise RenditionError("InvalidVideo", f"no poster: the video {exc.message}") from None
    Photo.objects.filter(id=photo.id).update(poster_ms=at_ms)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def timeline_name(photo: Photo) -> str:
    """Where a video's timeline (Rekognition Video's three responses) is kept: beside its
    rendition, under the prefix the app may write (infra/resources.py)."""
    return f"{RENDITION_PREFIX}{photo.uid}.timeline.json"


def save_timeline(photo: Photo, timeline: dict) -> str:
    storage = photo.image.storage
    name = timeline_name(photo)
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(json.dumps(timeline, separators=(",", ":")).encode()))
    cache.delete(f"timeline:{name}")
    return saved


def photo_timeline(photo: Photo) -> dict | None:
    """A video's timeline, or None before it is analysed (remembered for an hour)."""
    name = timeline_name(photo)
    found = cache.get(f"timeline:{name}")
    if found is None:
        try:
            with photo.image.storage.open(name, "rb") as handle:
                found = json.loads(handle.read())
        except (FileNotFoundError, OSError, ValueError):
            return None
        cache.set(f"timeline:{name}", found, 3600)
    return found


def display_rendition_name(photo: Photo) -> str:
    return f"{RENDITION_PREFIX}{photo.uid}.jpg"


def photo_display_rendition(*, photo: Photo) -> str:
    """The name in storage of the photo as everyone but its owner sees it: at most
    DISPLAY_SIDE a side. Made on first request and kept; erasure removes it."""
    storage = photo.image.storage
    name = display_rendition_name(photo)
    # Remembered once made, so a page of photos costs no storage round trip (a HeadObject
    # on S3) per image; a deleted photo 404s before this is asked.
    if cache.get(f"rendition:{name}") or storage.exists(name):
        cache.set(f"rendition:{name}", True, RENDITION_CACHE_SECONDS)
        return name
    saved = storage.save(name, ContentFile(_upright_jpeg(photo, side=DISPLAY_SIDE, quality=88)))
    if saved != name:  # two first requests at once: keep one copy
        storage.delete(saved)
    cache.set(f"rendition:{name}", True, RENDITION_CACHE_SECONDS)
    return name


def photo_make_thumbnail(*, photo_id: int) -> str | None:
    """Make the photo's JPEG thumbnail, at most THUMBNAIL_SIDE a side. Returns its
    storage name (None if the photo is gone)."""
    photo = Photo.objects.filter(id=photo_id).first()
    if photo is None:
        return None
    data = _upright_jpeg(photo, side=THUMBNAIL_SIDE, quality=85)
    storage = photo.image.storage
    name = thumbnail_upload_to(photo, "thumbnail.jpg")
    if photo.thumbnail and photo.thumbnail.name:
        storage.delete(photo.thumbnail.name)
    saved = storage.save(name, ContentFile(data))
    Photo.objects.filter(id=photo.id).update(thumbnail=saved)
    return saved


# The task's name is the one it had when it lived in photos.tasks: queued messages and
# beat entries name tasks, so the names stay put when the code moves.
@shared_task(name="photos.tasks.make_thumbnail", acks_late=True, soft_time_limit=60, time_limit=90)
def make_thumbnail(photo_id: int) -> str | None:
    """Make the photo's thumbnail (orientation applied, EXIF and GPS stripped)."""
    try:
        return photo_make_thumbnail(photo_id=photo_id)
    except FileNotFoundError:
        logger.warning("photo %s: image missing from storage, no thumbnail", photo_id)
        return None
    except (OSError, RenditionError) as exc:
        logger.warning("photo %s: cannot make a thumbnail: %s", photo_id, exc)
        return None
