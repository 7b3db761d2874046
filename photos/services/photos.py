"""A photo's life in the library: stored, analysed, public or private, trashed and
restored. Erasure is erasure.py's; receiving uploads is uploads.py's."""

from __future__ import annotations

import logging
import unicodedata
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ..models import CONTENT_TYPES, EXTENSIONS, AuditEvent, DescriptionWord, Photo
from ..pipelines import pipeline
from ..renditions import enqueue_stream, make_stream, make_thumbnail, photo_stream, rendition_requested
from ..selectors.search import DESCRIBED_SECONDS, described_key, description_words
from ..validation import CheckedUpload

TRASH_DAYS = 30
logger = logging.getLogger(__name__)


class StorageFailed(Exception):
    """The file could not be written to storage; the message is for the user."""


def photo_create(*, owner, upload: CheckedUpload, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Store a validated upload under a fresh UUID key and enqueue its analysis once the
    transaction commits (a broker outage leaves it ``uploaded`` for the sweeper)."""
    photo = Photo(owner=owner, visibility=visibility, **checked_fields(upload))
    upload.file.seek(0)
    try:
        photo.image.save(f"upload.{EXTENSIONS[upload.format]}", upload.file, save=False)
    except (OSError, BotoCoreError, ClientError) as exc:  # a full disk, a refused or unreachable bucket
        logger.error("storing an upload of user %s failed: %s", getattr(owner, "pk", None), exc)
        if photo.image.name:
            photo.image.storage.delete(photo.image.name)
        raise StorageFailed("could not be stored: the storage refused it; try again later.") from exc
    try:
        photo.save()
    except Exception:
        # The row did not make it: do not leave an orphan object in storage.
        photo.image.storage.delete(photo.image.name)
        raise
    photo_enqueue_new(photo)
    return photo


def checked_fields(upload: CheckedUpload) -> dict:
    """A new photo's (or video's) fields from what validation learned of its file."""
    fields = {"original_filename": upload.original_filename, "content_type": CONTENT_TYPES[upload.format],
              "size": upload.size, "width": upload.width, "height": upload.height, "sha256": upload.sha256,
              **upload.taken_fields()}
    if upload.video is not None:
        fields.update(kind=Photo.Kind.VIDEO, duration_ms=upload.video.duration_ms, video_codec=upload.video.codec)
    return fields


def photo_enqueue_new(photo: Photo) -> None:
    """Once the transaction commits: its analysis, and a video's stream rendition."""
    transaction.on_commit(lambda: photo_enqueue_analysis(photo_id=photo.id))
    if photo.is_video:
        transaction.on_commit(lambda: enqueue_stream(photo.id))


# A rendition not there this long after upload was lost (the broker was down, a worker
# died): asked for again at most RENDITION_TRIES times a day, for uploads of the last week,
# and never while an earlier request may still be queued or running (RENDITION_PENDING).
RENDITION_GRACE_SECONDS = 20 * 60  # the stream task's hard limit (16 min) and a margin
RENDITION_SWEEP_DAYS = 7
RENDITION_TRIES = 3
RENDITION_SWEEP_BATCH = 100


def renditions_sweep(*, now=None) -> dict[str, int]:
    """Ask again for thumbnails and video stream renditions that were never made. Each run
    looks at the next RENDITION_SWEEP_BATCH candidates after the last run's (a cursor, so
    a batch of ones that cannot be made never hides the rest); a stream made already costs
    nothing here (remembered)."""
    now = now or timezone.now()
    recent = Photo.objects.filter(created_at__lt=now - timedelta(seconds=RENDITION_GRACE_SECONDS),
                                  created_at__gte=now - timedelta(days=RENDITION_SWEEP_DAYS))
    asked = {"thumbnails": 0, "streams": 0}
    for photo in _next_batch("thumbnail", recent.filter(thumbnail="")):
        asked["thumbnails"] += _ask_again("thumbnail", photo.id, make_thumbnail)
    for photo in _next_batch("stream", recent.filter(kind=Photo.Kind.VIDEO)):
        if not photo_stream(photo):
            asked["streams"] += _ask_again("stream", photo.id, make_stream)
    return asked


def _next_batch(what: str, candidates) -> list[Photo]:
    key = f"rendition-sweep-cursor:{what}"
    after = cache.get(key, 0)
    batch = list(candidates.filter(id__gt=after).order_by("id").only("id", "uid", "image")[:RENDITION_SWEEP_BATCH])
    cache.set(key, batch[-1].id if len(batch) == RENDITION_SWEEP_BATCH else 0, 24 * 3600)  # the end: from the start
    return batch


def _ask_again(what: str, photo_id: int, task) -> int:
    tries_key = f"rendition-tries:{what}:{photo_id}"
    cache.add(tries_key, 0, 24 * 3600)
    if cache.get(tries_key, 0) >= RENDITION_TRIES or not rendition_requested(what, photo_id):
        return 0
    try:
        task.delay(photo_id)
    except Exception as exc:  # kombu raises OperationalError and friends: the next run asks again
        logger.warning("could not enqueue the %s of photo %s: %s", what, photo_id, exc)
        cache.delete(f"rendition-pending:{what}:{photo_id}")
        return 0
    try:
        cache.incr(tries_key)
    except ValueError:  # expired in between
        cache.set(tries_key, 1, 24 * 3600)
    return 1


def photo_enqueue_analysis(*, photo_id: int) -> bool:
    """Start the analysis of a stored photo through the configured pipeline.

    Returns False (and logs) when the broker is unreachable: the photo stays
    ``uploaded`` and the periodic sweeper enqueues it later. Nothing is lost. In AWS the
    S3 notification starts the analysis, so this only asks for the thumbnail."""
    return pipeline().enqueue_analysis(photo_id=photo_id)


def photos_sweep_stuck(*, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
    """Re-enqueue photos whose analysis was lost (the pipeline knows how; in AWS the S3
    event drives analysis and ``analyse_bucket`` is the backfill)."""
    return pipeline().sweep(stuck_after_seconds=stuck_after_seconds, analyzing_after_seconds=analyzing_after_seconds)


def photos_reanalyse(*, photo_ids: list[int]) -> int:
    """Analyse photos again; their labels follow the curation rules when the new record
    is applied. The object itself is never rewritten. Returns how many were sent."""
    for video in Photo.objects.filter(id__in=photo_ids, kind=Photo.Kind.VIDEO):
        if not photo_stream(video):  # made once; a reanalysis does not re-encode it
            enqueue_stream(video.id)
    return pipeline().reanalyse(photo_ids=list(photo_ids))


def photo_set_visibility(*, photo_id: int, actor, visibility: str) -> Photo | None:
    """The owner makes a photo public or private, on the record; the photo, or None if
    the actor is not its owner or it is gone."""
    photos_set_visibility(photo_ids=[photo_id], actor=actor, visibility=visibility)
    return Photo.objects.filter(id=photo_id, owner=actor).first() if actor.pk else None


TITLE_MAX, CAPTION_MAX = 200, 2000


class DescribeError(ValueError):
    """The title or caption cannot be kept; the message is for the owner."""


def photo_describe(*, photo_id: int, actor, title: str, caption: str) -> Photo | None:
    """The owner names and captions their photo, on the record. Empty words put the
    machine title back. Control characters go, runs of spaces become one; a title over
    TITLE_MAX or a caption over CAPTION_MAX characters is refused, not cut. Returns the
    photo, or None if the actor is not its owner, or it is gone or in the trash."""
    title, caption = _plain(title, keep_lines=False), _plain(caption, keep_lines=True)
    if len(title) > TITLE_MAX:
        raise DescribeError(f"A title can be at most {TITLE_MAX} characters; this one has {len(title)}.")
    if len(caption) > CAPTION_MAX:
        raise DescribeError(f"A caption can be at most {CAPTION_MAX} characters; this one has {len(caption)}.")
    if not getattr(actor, "pk", None):
        return None
    with transaction.atomic():
        photo = (Photo.objects.select_for_update()
                 .filter(id=photo_id, owner=actor, trashed_at__isnull=True).first())
        if photo is None:
            return None
        before = {"title": photo.title, "caption": photo.caption}
        if before == {"title": title, "caption": caption}:
            return photo
        Photo.objects.filter(id=photo.id).update(title=title, caption=caption, updated_at=timezone.now())
        photo.title, photo.caption = title, caption
        # What search finds the photo by: the words of both, once each, lower-cased.
        DescriptionWord.objects.filter(photo=photo).delete()
        words = set(description_words(f"{title} {caption}"))
        DescriptionWord.objects.bulk_create([DescriptionWord(photo=photo, word=w) for w in sorted(words)])
        # Searches find the new words at once, not after the minute a probe is remembered.
        transaction.on_commit(lambda: cache.set_many({described_key(w): True for w in words}, DESCRIBED_SECONDS))
        AuditEvent.objects.create(photo=photo, action=AuditEvent.Action.DESCRIBE, actor=actor, before=before,
                                  after={"title": title, "caption": caption})
    return photo


def _plain(text: str, *, keep_lines: bool) -> str:
    """``text`` without control or format characters (NUL, bidi overrides), its spaces
    collapsed; a caption keeps single line breaks."""
    text = unicodedata.normalize("NFC", str(text or ""))
    lines = ["".join(ch for ch in line if unicodedata.category(ch)[0] != "C") for line in text.splitlines()]
    lines = [" ".join(line.split()) for line in lines]
    if not keep_lines:
        return " ".join(line for line in lines if line)
    return "\n".join(lines).strip()


def photos_set_visibility(*, photo_ids: list[int], actor, visibility: str) -> int:
    """Make the actor's own photos among ``photo_ids`` public or private, each change on
    the record, in a constant number of queries. A public photo shows in the gallery only
    once labelled and while no moderator holds it back (selectors). Returns how many
    changed; other people's photos are not touched."""
    if visibility not in Photo.Visibility.values:
        raise ValueError(f"visibility must be one of {', '.join(Photo.Visibility.values)}")
    with transaction.atomic():
        changing = list(Photo.objects.select_for_update().filter(id__in=photo_ids, owner=actor, owner__isnull=False)
                        .exclude(visibility=visibility).values_list("id", "visibility"))
        if changing:
            Photo.objects.filter(id__in=[pid for pid, _ in changing]).update(visibility=visibility, updated_at=timezone.now())
            AuditEvent.objects.bulk_create([
                AuditEvent(photo_id=pid, action=AuditEvent.Action.VISIBILITY, actor=actor, before={"visibility": old},
                           after={"visibility": visibility})
                for pid, old in changing
            ])
    return len(changing)


def photos_trash(*, photo_ids: list[int], actor) -> int:
    """Move the actor's own photos to their trash: from then on no one else sees them
    (gallery, API, image links), and they are erased after TRASH_DAYS unless restored.
    Returns how many moved."""
    return _trash_or_restore(photo_ids, actor, trash=True)


def photos_restore(*, photo_ids: list[int], actor) -> int:
    """Take the actor's own photos out of the trash, as they were."""
    return _trash_or_restore(photo_ids, actor, trash=False)


def _trash_or_restore(photo_ids: list[int], actor, *, trash: bool) -> int:
    now = timezone.now()
    with transaction.atomic():
        ids = list(Photo.objects.select_for_update().filter(id__in=photo_ids, owner=actor, owner__isnull=False,
                                                            trashed_at__isnull=trash).values_list("id", flat=True))
        if ids:
            Photo.objects.filter(id__in=ids).update(trashed_at=now if trash else None, updated_at=now)
            action = AuditEvent.Action.TRASH if trash else AuditEvent.Action.RESTORE
            AuditEvent.objects.bulk_create([AuditEvent(photo_id=pid, action=action, actor=actor, at=now) for pid in ids])
    return len(ids)


def photos_already_uploaded(*, owner, sha256s: list[str]) -> dict[str, str]:
    """Which of these content hashes the owner already has: {sha256: original filename}."""
    return dict(Photo.objects.filter(owner=owner, sha256__in=sha256s).values_list("sha256", "original_filename"))
