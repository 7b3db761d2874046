"""Writes. Functions are named ``<entity>_<action>`` and take keyword arguments, except
``apply_records(records)``, whose name and signature are the contract in DESIGN.md; each
says in its docstring what it guarantees."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .apply import ApplyResult, apply_records, format_from_key  # noqa: F401  (the public home of apply_records)
from infra.functions.labeler.rendition import RenditionError, upright_jpeg

from .models import CONTENT_TYPES, EXTENSIONS, Photo
from .pipelines import pipeline

logger = logging.getLogger(__name__)

# --- photos ---------------------------------------------------------------------------


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


def photo_create(*, owner, upload: CheckedUpload, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Store a validated upload under a fresh UUID key and enqueue its analysis once the
    transaction commits (a broker outage leaves it ``uploaded`` for the sweeper)."""
    photo = Photo(
        owner=owner,
        original_filename=upload.original_filename,
        content_type=CONTENT_TYPES[upload.format],
        size=upload.size,
        width=upload.width,
        height=upload.height,
        sha256=upload.sha256,
        visibility=visibility,
    )
    upload.file.seek(0)
    photo.image.save(f"upload.{EXTENSIONS[upload.format]}", upload.file, save=False)
    try:
        photo.save()
    except Exception:
        # The row did not make it: do not leave an orphan object in storage.
        photo.image.storage.delete(photo.image.name)
        raise
    transaction.on_commit(lambda: photo_enqueue_analysis(photo_id=photo.id))
    return photo


def photo_enqueue_analysis(*, photo_id: int) -> bool:
    """Start the analysis of a stored photo through the configured pipeline.

    Returns False (and logs) when the broker is unreachable: the photo stays
    ``uploaded`` and the periodic sweeper enqueues it later. Nothing is lost. In AWS the
    S3 notification starts the analysis, so this only asks for the thumbnail."""
    return pipeline().enqueue_analysis(photo_id=photo_id)


def photo_mark_analyzing(*, photo_id: int) -> bool:
    """Claim a photo for analysis; False if it is already analysed (idempotent tasks)."""
    updated = Photo.objects.filter(id=photo_id, status__in=Photo.PENDING_STATUSES).update(
        status=Photo.Status.ANALYZING, updated_at=timezone.now()
    )
    if updated:
        Photo.objects.filter(id=photo_id).update(analysis_attempts=F("analysis_attempts") + 1)
    return bool(updated)


def photo_mark_failed(*, photo_id: int, reason: str) -> None:
    """Record a failure that no retry will fix."""
    Photo.objects.filter(id=photo_id).update(status=Photo.Status.FAILED, status_reason=reason[:2000], updated_at=timezone.now())


def photo_set_thumbnail(*, photo_id: int, name: str) -> None:
    Photo.objects.filter(id=photo_id).update(thumbnail=name)




# --- analysis (local pipeline) ---------------------------------------------------------

# Rekognition reads JPEG and PNG up to 15 MB; anything else is analysed as a JPEG
# rendition within its limits, made by the same code as in the labeler Lambda.
_local_client = None


def local_rekognition():
    """The process-wide LocalRekognition, reading S3Object requests from Django storage."""
    global _local_client
    if _local_client is None:
        from django.core.files.storage import default_storage

        from .analysis import LocalRekognition

        def read(bucket: str, name: str, version: str | None) -> bytes:
            with default_storage.open(name, "rb") as handle:
                return handle.read()

        _local_client = LocalRekognition(reader=read, label_models=settings.LOCAL_LABEL_MODELS)
    return _local_client


def photo_analyze(*, photo_id: int) -> ApplyResult | None:
    """Analyse one photo with the local detector and apply the record.

    Returns None when the photo is gone or already analysed (the task is idempotent).
    Rejections by the detector become a FAILED record; transient errors are raised
    (botocore ClientError) for the task to retry."""
    from infra.functions.labeler import AnalyzeOptions, ImageRef, analyze
    from infra.functions.labeler.rendition import analysis_rendition, needs_rendition

    if not photo_mark_analyzing(photo_id=photo_id):
        return None
    photo = Photo.objects.get(id=photo_id)
    bucket = settings.AWS_STORAGE_BUCKET_NAME or "local"
    image = ImageRef(bucket=bucket, key=photo.key, etag=photo.etag or photo.sha256, size=photo.size)
    if needs_rendition(photo.key, photo.size):
        try:
            with photo.image.open("rb") as handle:
                image = replace(image, data=analysis_rendition(handle.read(), max_pixels=2 * settings.PHOTOS_MAX_PIXELS))
        except RenditionError as exc:  # as in the Lambda: a FAILED record that says why
            from infra.functions.labeler.record import STATUS_FAILED, AnalysisError, LabelRecord, now_iso

            stamp = now_iso()
            return apply_records([LabelRecord(bucket=bucket, key=photo.key, etag=image.etag, size=photo.size,
                                              status=STATUS_FAILED, engine="local", analyzed_at=stamp, updated_at=stamp,
                                              error=AnalysisError(code=exc.code, message=str(exc)[:500]))])
    record = analyze(image, local_rekognition(), options=AnalyzeOptions())
    return apply_records([record])


def _upright_jpeg(photo: Photo, *, side: int, quality: int) -> bytes:
    """The photo as a JPEG of at most ``side`` pixels a side, upright, flattened, and
    with none of the upload's metadata (no GPS position leaks)."""
    with photo.image.open("rb") as handle:
        return upright_jpeg(handle, side=side, quality=quality, max_pixels=2 * settings.PHOTOS_MAX_PIXELS)


THUMBNAIL_SIDE = 640
DISPLAY_SIDE = 2048
RENDITION_CACHE_SECONDS = 24 * 3600


def display_rendition_name(photo: Photo) -> str:
    from infra.resources import RENDITION_PREFIX  # the web app's S3 policy grants this prefix

    return f"{RENDITION_PREFIX}{photo.uid}.jpg"


def photo_display_rendition(*, photo: Photo) -> str:
    """The name in storage of the photo as everyone but its owner sees it: an upright JPEG
    of at most DISPLAY_SIDE a side with no EXIF, XMP or IPTC (no GPS position, camera,
    serial number, artist or timestamps). Made on first request and kept; photo_delete
    removes it."""
    from django.core.files.base import ContentFile

    from django.core.cache import cache

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
    """Make the photo's JPEG thumbnail: EXIF orientation applied, no EXIF kept (so no
    GPS position leaks), at most THUMBNAIL_SIDE a side. Returns its storage name."""
    from django.core.files.base import ContentFile

    from .models import thumbnail_upload_to

    photo = Photo.objects.filter(id=photo_id).first()
    if photo is None:
        return None
    data = _upright_jpeg(photo, side=THUMBNAIL_SIDE, quality=85)
    storage = photo.image.storage
    name = thumbnail_upload_to(photo, "thumbnail.jpg")
    if photo.thumbnail and photo.thumbnail.name:
        storage.delete(photo.thumbnail.name)
    saved = storage.save(name, ContentFile(data))
    photo_set_thumbnail(photo_id=photo.id, name=saved)
    return saved


def photos_sweep_stuck(*, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
    """Re-enqueue photos whose analysis was lost (the pipeline knows how; in AWS the S3
    event drives analysis and ``analyse_bucket`` is the backfill)."""
    return pipeline().sweep(stuck_after_seconds=stuck_after_seconds, analyzing_after_seconds=analyzing_after_seconds)


def photos_reanalyse(*, photo_ids: list[int]) -> int:
    """Analyse photos again; their labels follow the curation rules when the new record
    is applied. The object itself is never rewritten. Returns how many were sent."""
    return pipeline().reanalyse(photo_ids=list(photo_ids))


def photo_set_visibility(*, photo_id: int, actor, visibility: str) -> Photo | None:
    """The owner makes a photo public or private, on the record; the photo, or None if
    the actor is not its owner or it is gone."""
    photos_set_visibility(photo_ids=[photo_id], actor=actor, visibility=visibility)
    return Photo.objects.filter(id=photo_id, owner=actor).first() if actor.pk else None


def photos_set_visibility(*, photo_ids: list[int], actor, visibility: str) -> int:
    """Make the actor's own photos among ``photo_ids`` public or private, each change on
    the record, in a constant number of queries. A public photo shows in the gallery only
    once labelled and while no moderator holds it back (selectors). Returns how many
    changed; other people's photos are not touched."""
    from .models import AuditEvent

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


TRASH_DAYS = 30


def photos_trash(*, photo_ids: list[int], actor) -> int:
    """Move the actor's own photos to their trash: from then on no one else sees them
    (gallery, API, image links), and they are erased after TRASH_DAYS unless restored.
    Returns how many moved."""
    return _trash_or_restore(photo_ids, actor, trash=True)


def photos_restore(*, photo_ids: list[int], actor) -> int:
    """Take the actor's own photos out of the trash, as they were."""
    return _trash_or_restore(photo_ids, actor, trash=False)


def _trash_or_restore(photo_ids: list[int], actor, *, trash: bool) -> int:
    from .models import AuditEvent

    now = timezone.now()
    with transaction.atomic():
        ids = list(Photo.objects.select_for_update().filter(id__in=photo_ids, owner=actor, owner__isnull=False,
                                                            trashed_at__isnull=trash).values_list("id", flat=True))
        if ids:
            Photo.objects.filter(id__in=ids).update(trashed_at=now if trash else None, updated_at=now)
            action = AuditEvent.Action.TRASH if trash else AuditEvent.Action.RESTORE
            AuditEvent.objects.bulk_create([AuditEvent(photo_id=pid, action=action, actor=actor, at=now) for pid in ids])
    return len(ids)


def photos_purge_trash(*, now=None, batch: int = 200) -> int:
    """Erase photos that have been in the trash for TRASH_DAYS, through the same path as
    a delete (every version of every object, the tombstone in AWS), on the record.
    Returns how many were erased in this run (at most ``batch``)."""
    from datetime import timedelta

    cutoff = (now or timezone.now()) - timedelta(days=TRASH_DAYS)
    ids = list(Photo.objects.filter(trashed_at__lt=cutoff).order_by("trashed_at").values_list("id", flat=True)[:batch])
    erased = 0
    for pid in ids:
        try:
            # Still in the trash, checked under the row's lock: a restore in between wins.
            erased += _erase(pid, actor=None, note=f"trash emptied after {TRASH_DAYS} days", only=Q(trashed_at__lt=cutoff))
        except Exception:  # one photo that cannot be erased now must not stop the rest
            logger.exception("photo %s: could not be erased from the trash; retried at the next run", pid)
    return erased


def photo_delete(*, photo_id: int, actor) -> bool:
    """Delete a photo for good: its row and everything hanging off it, then, once that
    commits, its image, thumbnail and rendition in storage (every version, on S3) and, in
    the AWS pipeline, its DynamoDB record, replaced by an erasure tombstone. Owners
    delete their own photos; others need the delete_photo permission (superusers): a
    moderator removes a photo through moderation, which keeps its files for appeals.
    Recorded as an AuditEvent. False if not allowed or not found."""
    photo = Photo.objects.filter(id=photo_id).only("id", "owner_id").first()
    owner = photo is not None and photo.owner_id is not None and photo.owner_id == actor.pk
    if photo is None or not (owner or actor.has_perm("photos.delete_photo")):
        return False
    return _erase(photo_id, actor=actor)


def _erase(photo_id: int, *, actor, note: str = "", only: Q | None = None) -> bool:
    """The one erasure path (delete, emptied trash): permission is the caller's check;
    ``only`` is a condition the row must still meet under its lock."""
    from .models import AuditEvent

    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(Q(id=photo_id) & (only or Q())).first()
        if photo is None:
            return False
        names = [f.name for f in (photo.image, photo.thumbnail) if f and f.name] + [display_rendition_name(photo)]
        key, filename = photo.key, photo.original_filename
        AuditEvent.objects.create(action=AuditEvent.Action.DELETE, actor=actor,
                                  note=f"{filename[:150]} ({note})" if note else filename[:200],
                                  before={"key": key, "uid": str(photo.uid)}, after={})
        # The tombstone before the row goes: if it cannot be written, the transaction
        # rolls back and the photo stays (nothing half-erased); once it is, no replayed
        # S3 event, retry or reconcile can bring the photo back.
        pipeline().erase(key=key)
        photo.delete()

    def cleanup():
        from django.core.files.storage import default_storage

        for name in names:
            try:
                if settings.PHOTOS_STORAGE == "s3":
                    delete_every_version(name)
                else:
                    default_storage.delete(name)  # a name that is not there is no error
            except Exception as exc:  # storage hiccup: the row is gone, log what is left
                logger.warning("photo %s deleted but %s could not be removed: %s", photo_id, name, exc)

    transaction.on_commit(cleanup)
    return True


def delete_every_version(name: str) -> int:
    """Erase an object from the versioned bucket: every version and delete marker, not
    just a new delete marker over the old bytes (which the bucket would keep 30 days)."""
    from django.core.files.storage import default_storage

    client = default_storage.connection.meta.client
    bucket = default_storage.bucket_name
    key = default_storage._normalize_name(name)
    deleted = 0
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        versions = [v for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if v["Key"] == key]
        if versions:
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key, "VersionId": v["VersionId"]} for v in versions],
                                                         "Quiet": True})
            deleted += len(versions)
    return deleted


def photos_erased(*, keys: list[str]) -> int:
    """Photos whose objects were erased (tombstones from the sync): deleted outside the
    app, so their rows go too, on the audit record. Unknown keys are nothing to do."""
    from .models import AuditEvent

    removed, leftovers = 0, []
    for photo in Photo.objects.filter(image__in=keys).only("id", "original_filename", "image", "thumbnail", "uid"):
        AuditEvent.objects.create(action=AuditEvent.Action.DELETE, actor=None, note=f"{photo.original_filename[:150]} "
                                  "(its object was deleted from the bucket)", before={"key": photo.image.name, "uid": str(photo.uid)})
        leftovers += [n for n in (photo.thumbnail.name if photo.thumbnail else "", display_rendition_name(photo)) if n]
        photo.delete()
        removed += 1

    def cleanup():  # what the app made from the object: thumbnail and rendition
        from django.core.files.storage import default_storage

        for name in leftovers:
            try:
                delete_every_version(name) if settings.PHOTOS_STORAGE == "s3" else default_storage.delete(name)
            except Exception as exc:
                logger.warning("erased photo's %s could not be removed: %s", name, exc)

    if leftovers:
        transaction.on_commit(cleanup)
    return removed


def photos_already_uploaded(*, owner, sha256s: list[str]) -> dict[str, str]:
    """Which of these content hashes the owner already has: {sha256: original filename}."""
    return dict(Photo.objects.filter(owner=owner, sha256__in=sha256s).values_list("sha256", "original_filename"))


# --- direct browser-to-S3 uploads -----------------------------------------------------

DIRECT_UPLOAD_SECONDS = 600
DIRECT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class DirectUploadError(ValueError):
    """The direct upload cannot go ahead or be confirmed; the message is for the user."""


def direct_upload_start(*, owner, filename: str, content_type: str, size: int) -> dict:
    """A presigned POST letting the browser put one file straight into the bucket, with
    the size and content type enforced by S3 itself, and a signed token to confirm it."""
    from django.core import signing
    from django.core.files.storage import default_storage

    from .forms import clean_filename
    from .models import photo_upload_to

    if content_type not in DIRECT_TYPES:
        raise DirectUploadError("Upload JPEG, PNG or WebP photos.")
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    if not 0 < size <= limit:
        raise DirectUploadError(f"Photos must be between 1 byte and {limit} bytes.")
    key = photo_upload_to(Photo(), f"upload.{DIRECT_TYPES[content_type]}")
    client = default_storage.connection.meta.client
    post = client.generate_presigned_post(
        Bucket=settings.AWS_STORAGE_BUCKET_NAME,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, limit]],
        ExpiresIn=DIRECT_UPLOAD_SECONDS,
    )
    token = signing.dumps({"key": key, "user": owner.pk, "filename": clean_filename(filename)}, salt="direct-upload")
    return {"url": post["url"], "fields": post["fields"], "token": token}


def direct_upload_confirm(*, owner, token: str, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Check the object the browser uploaded exactly as a form upload is checked, then
    create its Photo (or claim the one a sync made first). A rejected file is deleted."""
    from django.core import signing
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .forms import UploadRejected, check_upload

    try:
        data = signing.loads(token, salt="direct-upload", max_age=DIRECT_UPLOAD_SECONDS * 2)
    except signing.BadSignature:
        raise DirectUploadError("This upload link is invalid or has expired.") from None
    if data.get("user") != owner.pk:
        raise DirectUploadError("This upload belongs to someone else.")
    key = data["key"]
    try:
        with default_storage.open(key, "rb") as handle:
            content = handle.read(settings.PHOTOS_MAX_UPLOAD_BYTES + 1)
    except (FileNotFoundError, OSError):
        raise DirectUploadError("The file never reached storage; try the upload again.") from None
    upload = SimpleUploadedFile(data["filename"], content)
    try:
        checked = check_upload(upload)
        if checked.sha256 in photos_already_uploaded(owner=owner, sha256s=[checked.sha256]):
            raise UploadRejected(checked.original_filename, "is already in your photos.")
    except UploadRejected as exc:
        default_storage.delete(key)
        raise DirectUploadError(f"{exc.filename} {exc.message}") from None
    try:
        with transaction.atomic():
            photo = Photo.objects.select_for_update().filter(image=key).first()
            if photo is None:
                photo = Photo(image=key)
            elif photo.owner_id not in (None, owner.pk):
                raise DirectUploadError("This upload belongs to someone else.")
            photo.owner = owner
            photo.original_filename = checked.original_filename
            photo.content_type = CONTENT_TYPES[checked.format]
            photo.size, photo.width, photo.height, photo.sha256 = checked.size, checked.width, checked.height, checked.sha256
            photo.visibility = visibility
            photo.save()
            transaction.on_commit(lambda: photo_enqueue_analysis(photo_id=photo.id))
    except IntegrityError:
        # The same file confirmed twice at once: the unique constraint kept one.
        default_storage.delete(key)
        raise DirectUploadError(f"{checked.original_filename} is already in your photos.") from None
    return photo
