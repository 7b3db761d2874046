"""What the app makes from a stored photo: its thumbnail and the display rendition that
everyone but its owner is served. Both are upright JPEGs with none of the upload's
metadata (no EXIF, XMP or IPTC: no GPS position, camera, serial number or timestamps),
made by the same code as the labeler's analysis renditions."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile, File
from PIL import Image

from infra.functions.labeler.rendition import RenditionError, upright_jpeg
from infra.functions.labeler.video_jobs import stream_key, timeline_key
from infra.resources import RENDITION_PREFIX  # the web app's S3 policy grants this prefix

from . import video
from .models import Photo, thumbnail_upload_to

logger = logging.getLogger(__name__)

THUMBNAIL_SIDE = 640
DISPLAY_SIDE = 2048
RENDITION_CACHE_SECONDS = 24 * 3600

__all__ = ["RenditionError", "display_rendition_name", "make_thumbnail", "photo_display_rendition",
           "make_stream", "photo_make_stream", "photo_make_thumbnail", "photo_stream", "photo_timeline", "save_timeline",
           "stream_name", "timeline_name", "photo_timeline_index", "still_name", "save_stills", "derived_names", "forget_timelines", "MAX_STILLS", "make_stills", "photo_make_stills", "still_jpeg"]


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
            probed = video.probe_stored(handle)
            image, at_ms = video.poster(handle, probed, side=side)
        except video.VideoError as exc:
            raise RenditionError("InvalidVideo", f"no poster: the video {exc.message}") from None
    Photo.objects.filter(id=photo.id).update(poster_ms=at_ms)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def stream_name(photo: Photo) -> str:
    """A video's stream rendition: H.264 in MP4, what every browser plays, no metadata;
    in AWS also what Rekognition Video analyses of a video it cannot read itself (HEVC,
    WebM): named from the key by the same function as the starter's."""
    return stream_key(photo.key)


def photo_make_stream(*, photo_id: int) -> str | None:
    """Make a video's stream rendition (photos/video.py ``stream_rendition``) through a
    temporary file, and keep it beside the video. None if the photo is gone or not a video."""
    photo = Photo.objects.filter(id=photo_id, kind=Photo.Kind.VIDEO).first()
    if photo is None:
        return None
    storage = photo.image.storage
    name = stream_name(photo)
    if _made(storage, name):  # made already (a repeated request): never re-encoded under a player
        return name
    with tempfile.TemporaryDirectory(prefix="mediaapp-stream-") as folder:
        out = os.path.join(folder, "stream.mp4")
        with photo.image.open("rb") as handle:
            try:
                probed = video.probe_stored(handle)
                video.stream_rendition(handle, probed, out)
            except video.VideoError as exc:
                raise RenditionError("InvalidVideo", f"no stream rendition: the video {exc.message}") from None
        if storage.exists(name):
            storage.delete(name)
        with open(out, "rb") as made:
            saved = storage.save(name, File(made))
    return _kept_if_still_there(photo, saved, name)


def _kept_if_still_there(photo: Photo, saved: str, name: str) -> str | None:
    """A rendition made over minutes is kept only if its video still exists (an erasure
    meanwhile would leave it orphaned) and under its own name (a suffixed copy from a
    race is dropped)."""
    storage = photo.image.storage
    if saved != name or not _still_there(photo):
        storage.delete(saved)
        return None
    cache.set(f"rendition:{saved}", True, RENDITION_CACHE_SECONDS)
    return saved


def photo_stream(photo: Photo) -> str:
    """The stream rendition's name in storage, or "" before it is made."""
    name = stream_name(photo)
    return name if _made(photo.image.storage, name) else ""


def timeline_name(photo: Photo) -> str:
    """Where a video's timeline (Rekognition Video's responses) is kept, under the prefix
    the app may write: named from the object's key by the same function as the AWS
    collector's (``renditions/<uid>.timeline.json`` for the app's own keys), so the app
    reads what either path wrote."""
    return timeline_key(photo.key)


def save_timeline(photo: Photo, timeline: dict) -> str:
    storage = photo.image.storage
    name = timeline_name(photo)
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(json.dumps(timeline, separators=(",", ":")).encode()))
    cache.delete_many([f"timeline:{name}", f"timeline-index:{name}"])
    if saved != name or not _still_there(photo):
        storage.delete(saved)
    return name


def _still_there(photo: Photo) -> bool:
    """Asked after a file made from the photo is saved: an erasure that deleted the
    photo's files meanwhile missed it, so it goes (no orphan either way round)."""
    return Photo.objects.filter(id=photo.id).exists()


def forget_timelines(keys) -> None:
    """A video's timeline was written elsewhere (the AWS collector): what the pages
    remembered of it, or of its absence, goes."""
    names = [timeline_key(key) for key in keys]
    cache.delete_many([f"{prefix}:{name}" for name in names for prefix in ("timeline", "timeline-index")])


def photo_timeline_index(photo: Photo) -> dict:
    """What a search card needs of a video's timeline, kept small and cached on its own
    (a card never loads a timeline's boxes): each label segment as (start, name, its
    parents and aliases) and each line of text as (time, text)."""
    name = timeline_name(photo)
    found = cache.get(f"timeline-index:{name}")
    if found is None:
        timeline = photo_timeline(photo) or {}
        found = {
            "labels": [(e.get("StartTimestampMillis", e["Timestamp"]), e["Label"]["Name"],
                        [p["Name"] for p in e["Label"].get("Parents", [])] + [a["Name"] for a in e["Label"].get("Aliases", [])])
                       for e in timeline.get("labels", {}).get("Labels", [])],
            "text": [(e["Timestamp"], e["TextDetection"]["DetectedText"])
                     for e in timeline.get("text", {}).get("TextDetections", [])],
        }
        cache.set(f"timeline-index:{name}", found, 3600)
    return found


def photo_timeline(photo: Photo) -> dict | None:
    """A video's timeline, or None before it is analysed (remembered for an hour)."""
    name = timeline_name(photo)
    found = cache.get(f"timeline:{name}")
    if found is None:
        try:
            with photo.image.storage.open(name, "rb") as handle:
                found = json.loads(handle.read())
        except (FileNotFoundError, OSError, ValueError):
            found = {}  # remembered too (save_timeline forgets it): a page of videos costs no storage reads
        cache.set(f"timeline:{name}", found, 3600)
    return found or None


MAX_STILLS = 6  # still frames of a video's flagged moments kept for its moderators


def still_name(photo: Photo, n: int) -> str:
    """The ``n``-th still frame of a video's flagged moments, shown to its moderators."""
    return f"{RENDITION_PREFIX}{photo.uid}.flagged-{n}.jpg"


def save_stills(photo: Photo, jpegs: list[bytes]) -> None:
    """Keep a video's flagged moments as still JPEGs (at most MAX_STILLS), replacing the
    previous analysis's."""
    storage = photo.image.storage
    for n in range(MAX_STILLS):
        name = still_name(photo, n)
        if storage.exists(name):
            storage.delete(name)
        if n < len(jpegs):
            saved = storage.save(name, ContentFile(jpegs[n]))
            if saved != name or not _still_there(photo):
                storage.delete(saved)


STILL_SIDE = 640


def still_jpeg(rgb) -> bytes:
    """A frame (RGB array) as a small JPEG (at most STILL_SIDE a side) for moderators."""
    image = Image.fromarray(rgb)
    image.thumbnail((STILL_SIDE, STILL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def flagged_moments(timeline: dict) -> list[int]:
    """The starts of a video's flagged segments, strongest first, each once."""
    entries = sorted((timeline or {}).get("moderation", {}).get("ModerationLabels", []),
                     key=lambda e: -e["ModerationLabel"]["Confidence"])
    return list(dict.fromkeys(int(e.get("StartTimestampMillis", e["Timestamp"])) for e in entries))


def photo_make_stills(*, photo_id: int) -> list[int]:
    """Still frames of a flagged video's moments, for a timeline that came without them
    (Rekognition Video's, in AWS: the local worker keeps its own as it analyses): decoded
    from the stream rendition (or the video), kept beside it, and named in the timeline.
    The times it made stills of ([] if none were needed)."""
    photo = Photo.objects.filter(id=photo_id, kind=Photo.Kind.VIDEO).first()
    timeline = photo_timeline(photo) if photo else None
    if not timeline or timeline.get("moderation_stills"):
        return []
    wanted = flagged_moments(timeline)[:MAX_STILLS]
    if not wanted:
        return []
    source = photo_stream(photo) or photo.image.name
    with photo.image.storage.open(source, "rb") as handle:
        try:
            probed = video.probe_stored(handle)
            found = list(video.frames_at(handle, probed, wanted, side=STILL_SIDE))
        except video.VideoError as exc:
            raise RenditionError("InvalidVideo", f"no stills: the video {exc.message}") from None
    save_stills(photo, [still_jpeg(rgb) for _, rgb in found])
    save_timeline(photo, {**timeline, "moderation_stills": [ms for ms, _ in found]})
    return [ms for ms, _ in found]


def derived_names(photo: Photo) -> list[str]:
    """Every file made from the photo, whether made yet or not: what its erasure removes."""
    names = [photo.thumbnail.name if photo.thumbnail else "", thumbnail_upload_to(photo, "thumbnail.jpg"),
             display_rendition_name(photo)]
    if photo.is_video:
        names += [timeline_name(photo), stream_name(photo), *(still_name(photo, n) for n in range(MAX_STILLS))]
    return list(dict.fromkeys(name for name in names if name))


def display_rendition_name(photo: Photo) -> str:
    return f"{RENDITION_PREFIX}{photo.uid}.jpg"


def photo_display_rendition(*, photo: Photo) -> str:
    """The name in storage of the photo as everyone but its owner sees it: at most
    DISPLAY_SIDE a side. Made on first request and kept; erasure removes it."""
    storage = photo.image.storage
    name = display_rendition_name(photo)
    if _made(storage, name):
        return name
    saved = storage.save(name, ContentFile(_upright_jpeg(photo, side=DISPLAY_SIDE, quality=88)))
    if saved != name or not _still_there(photo):  # two first requests at once, or erased meanwhile
        storage.delete(saved)
    cache.set(f"rendition:{name}", True, RENDITION_CACHE_SECONDS)
    return name


def _made(storage, name: str) -> bool:
    """Whether a rendition is in storage: remembered once it is, so a page of photos costs
    no storage round trip (a HeadObject on S3) per image; a deleted photo 404s before
    this is asked."""
    if cache.get(f"rendition:{name}") or storage.exists(name):
        cache.set(f"rendition:{name}", True, RENDITION_CACHE_SECONDS)
        return True
    return False


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
    if not Photo.objects.filter(id=photo.id).update(thumbnail=saved):  # erased meanwhile: no orphan
        storage.delete(saved)
        return None
    return saved


# How long a rendition asked for may still be queued or running (its task's hard limit and
# a queue's wait): the sweep (services.photos.renditions_sweep) does not ask again meanwhile.
RENDITION_PENDING_SECONDS = {"thumbnail": 10 * 60, "stream": 40 * 60}


def rendition_requested(what: str, photo_id: int) -> bool:
    """Note that a rendition was asked for (at upload, by the sync or by the sweep); False
    if it was asked for recently enough that the task may still be queued or running."""
    return cache.add(f"rendition-pending:{what}:{photo_id}", True, RENDITION_PENDING_SECONDS[what])


def enqueue_stream(photo_id: int) -> bool:
    """Ask a worker for a video's stream rendition (what browsers play, and what Rekognition
    Video reads of a video that is not H.264). Without a broker the owner's page plays the
    original where the browser can, and the renditions sweep asks again."""
    try:
        make_stream.delay(photo_id)
    except Exception as exc:  # kombu raises OperationalError and friends
        logger.warning("could not enqueue the stream rendition of video %s: %s", photo_id, exc)
        return False
    rendition_requested("stream", photo_id)  # the sweep leaves it to this request a while
    return True


@shared_task(name="photos.tasks.make_stream", acks_late=True, soft_time_limit=900, time_limit=960)
def make_stream(photo_id: int) -> str | None:
    """Make a video's stream rendition (minutes for a long video: its own task)."""
    try:
        return photo_make_stream(photo_id=photo_id)
    except FileNotFoundError:
        logger.warning("video %s: missing from storage, no stream rendition", photo_id)
        return None
    except SoftTimeLimitExceeded:
        logger.warning("video %s: the stream rendition took too long; the original plays where it can", photo_id)
        return None
    except (OSError, RenditionError) as exc:
        logger.warning("video %s: cannot make a stream rendition: %s", photo_id, exc)
        return None


@shared_task(name="photos.tasks.make_stills", acks_late=True, soft_time_limit=120, time_limit=150)
def make_stills(photo_id: int) -> list[int]:
    """Still frames of a flagged video's moments for its moderators (photo_make_stills)."""
    try:
        return photo_make_stills(photo_id=photo_id)
    except (FileNotFoundError, OSError, RenditionError, SoftTimeLimitExceeded) as exc:
        logger.warning("video %s: no stills of its flagged moments: %s", photo_id, exc)
        return []


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
