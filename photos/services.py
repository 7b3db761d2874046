"""Writes. Functions are named ``<entity>_<action>`` and take keyword arguments, except
``apply_records(records)``, whose name and signature are the contract in DESIGN.md; each
says in its docstring what it guarantees."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from pathlib import PurePosixPath
from typing import Iterable

from django.core.files.uploadedfile import UploadedFile
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from infra.functions.labeler.record import STATUS_FAILED, STATUS_LABELED, STATUS_SKIPPED, LabelRecord

from .models import CONTENT_TYPES, EXTENSIONS, AnalysisRecord, DetectedText, Label, ModerationLabel, Photo
from .selectors import thresholds

logger = logging.getLogger(__name__)

RECORD_STATUS = {
    STATUS_LABELED: Photo.Status.LABELED,
    STATUS_FAILED: Photo.Status.FAILED,
    STATUS_SKIPPED: Photo.Status.SKIPPED,
}
# Rounding noise between two runs of the same model must not re-flag a cleared photo.
STRONGER_BY = 1.0


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    stale: int
    created_photos: int


def _box(box) -> dict:
    return {"left": box.left, "top": box.top, "width": box.width, "height": box.height}


def _parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt_timezone.utc)
    except ValueError:
        return None


@transaction.atomic
def apply_records(records: Iterable[LabelRecord]) -> ApplyResult:
    """Upsert LabelRecords into the models, in bulk and idempotently.

    Guarantees (DESIGN.md, "Curation rules"):
    - a constant number of queries per call, whatever the number of records;
    - applying the same records again changes nothing; a record older than the one
      already applied to its photo is ignored (late or duplicate events);
    - machine fields are updated, review state and editor edits never are;
      editor-added labels are untouched; a machine label gone from the latest analysis
      is deleted if pending, kept and marked missing if approved, left rejected if
      rejected (so it never comes back as pending);
    - a moderation label at or above the flag threshold flags the photo; a moderator's
      clearance holds unless a label is new or stronger than when it was cleared;
      removed photos stay removed;
    - a record whose key has no Photo creates one (an image put into the bucket directly).
    """
    latest: dict[str, LabelRecord] = {}
    for record in records:
        current = latest.get(record.key)
        if current is None or record.updated_at >= current.updated_at:
            latest[record.key] = record
    if not latest:
        return ApplyResult(0, 0, 0)

    photos = {p.image.name: p for p in Photo.objects.select_for_update().filter(image__in=list(latest))}
    missing = [key for key in latest if key not in photos]
    if missing:
        new = [
            Photo(
                image=key,
                original_filename=PurePosixPath(key).name[:255],
                size=latest[key].size,
                etag=latest[key].etag,
                content_type=CONTENT_TYPES.get(_format_from_key(key), ""),
            )
            for key in missing
        ]
        Photo.objects.bulk_create(new, ignore_conflicts=False)
        # Re-read: SQLite and PostgreSQL both return ids, but a re-read also locks them.
        photos.update({p.image.name: p for p in Photo.objects.select_for_update().filter(image__in=missing)})

    fresh = {
        key: record
        for key, record in latest.items()
        # Strictly newer: the same record read twice (sync overlap windows) is a no-op.
        if not photos[key].record_updated_at or record.updated_at > photos[key].record_updated_at
    }
    stale = len(latest) - len(fresh)
    photo_ids = [photos[key].id for key in fresh]
    if not fresh:
        return ApplyResult(0, stale, len(missing))

    limits = thresholds()
    existing: dict[int, dict[str, Label]] = {}
    for label in Label.objects.filter(photo_id__in=photo_ids):
        existing.setdefault(label.photo_id, {})[label.name] = label

    to_create: list[Label] = []
    to_update: list[Label] = []
    to_delete: list[int] = []
    moderation_rows: list[ModerationLabel] = []
    text_rows: list[DetectedText] = []
    photo_updates: list[Photo] = []
    now = timezone.now()

    for key, record in fresh.items():
        photo = photos[key]
        current = existing.get(photo.id, {})
        seen: set[str] = set()
        if record.status == STATUS_LABELED:
            for item in record.labels:
                seen.add(item.name)
                machine = {
                    "confidence": item.confidence,
                    "parents": list(item.parents),
                    "categories": list(item.categories),
                    "aliases": list(item.aliases),
                    "instances": [{"box": _box(i.box), "confidence": i.confidence} for i in item.instances],
                }
                label = current.get(item.name)
                if label is None:
                    to_create.append(Label(photo_id=photo.id, name=item.name, source=Label.Source.MACHINE, **machine))
                elif label.source == Label.Source.MACHINE:
                    changed = label.missing_from_latest or any(getattr(label, f) != v for f, v in machine.items())
                    if changed:
                        for field, value in machine.items():
                            setattr(label, field, value)
                        label.missing_from_latest = False
                        to_update.append(label)
            for name, label in current.items():
                if name in seen or label.source != Label.Source.MACHINE:
                    continue
                if label.review_state == Label.Review.PENDING:
                    to_delete.append(label.id)
                elif label.review_state == Label.Review.APPROVED and not label.missing_from_latest:
                    label.missing_from_latest = True
                    to_update.append(label)
            moderation_rows.extend(
                ModerationLabel(photo_id=photo.id, name=m.name, parent=m.parent, level=m.level, confidence=m.confidence)
                for m in record.moderation_labels
            )
            text_rows.extend(
                DetectedText(photo_id=photo.id, text=t.text[:500], type=t.type, confidence=t.confidence, box=_box(t.box))
                for t in record.text
            )
            _moderate(photo, record, limits["flag"], now)

        photo.status = RECORD_STATUS[record.status]
        photo.status_reason = (
            f"{record.error.code}: {record.error.message}"[:2000] if record.error else ""
        )
        photo.analyzed_at = _parse_time(record.analyzed_at) or now
        photo.engine = record.engine
        photo.model_versions = dict(record.model_versions)
        photo.record_updated_at = record.updated_at
        if record.etag:
            photo.etag = record.etag
        photo_updates.append(photo)

    labeled_ids = [photos[k].id for k, r in fresh.items() if r.status == STATUS_LABELED]
    if to_delete:
        Label.objects.filter(id__in=to_delete).delete()
    if to_create:
        Label.objects.bulk_create(to_create)
    if to_update:
        Label.objects.bulk_update(
            to_update, ["confidence", "parents", "categories", "aliases", "instances", "missing_from_latest"]
        )
    if labeled_ids:
        ModerationLabel.objects.filter(photo_id__in=labeled_ids).delete()
        DetectedText.objects.filter(photo_id__in=labeled_ids).delete()
    if moderation_rows:
        ModerationLabel.objects.bulk_create(moderation_rows)
    if text_rows:
        DetectedText.objects.bulk_create(text_rows)
    Photo.objects.bulk_update(
        photo_updates,
        [
            "status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at",
            "etag", "moderation_state", "flagged_at", "updated_at",
        ],
    )
    AnalysisRecord.objects.bulk_create(
        [
            AnalysisRecord(
                photo_id=photos[key].id, key=key, updated_at=record.updated_at, status=record.status,
                engine=record.engine, payload=record.to_dict(),
            )
            for key, record in fresh.items()
        ],
        ignore_conflicts=True,
    )
    return ApplyResult(applied=len(fresh), stale=stale, created_photos=len(missing))


def _moderate(photo: Photo, record: LabelRecord, flag_threshold: float, now) -> None:
    flagging = {m.name: m.confidence for m in record.moderation_labels if m.confidence >= flag_threshold}
    if not flagging or photo.moderation_state in (Photo.Moderation.FLAGGED, Photo.Moderation.REMOVED):
        return
    if photo.moderation_state == Photo.Moderation.CLEARED:
        seen = photo.cleared_moderation or {}
        if all(name in seen and confidence <= seen[name] + STRONGER_BY for name, confidence in flagging.items()):
            return
    photo.moderation_state = Photo.Moderation.FLAGGED
    photo.flagged_at = now


def _format_from_key(key: str) -> str:
    ext = PurePosixPath(key).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}.get(ext, "")


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
    """Send analyze_photo for a photo; mark it ``queued`` if the broker took it.

    Returns False (and logs) when the broker is unreachable: the photo stays
    ``uploaded`` and the periodic sweeper enqueues it later. Nothing is lost."""
    from .tasks import analyze_photo, make_thumbnail

    if settings.PHOTOS_PIPELINE != "local":
        # In AWS the S3 notification starts the analysis; the thumbnail is still ours.
        try:
            make_thumbnail.delay(photo_id)
        except Exception as exc:
            logger.warning("could not enqueue the thumbnail of photo %s: %s", photo_id, exc)
        return False
    # Marked queued first: in eager mode (no Redis) the task runs inside delay().
    Photo.objects.filter(id=photo_id, status=Photo.Status.UPLOADED).update(
        status=Photo.Status.QUEUED, updated_at=timezone.now()
    )
    try:
        analyze_photo.delay(photo_id)
        make_thumbnail.delay(photo_id)
    except Exception as exc:  # kombu raises OperationalError and friends
        logger.warning("could not enqueue analysis of photo %s: %s", photo_id, exc)
        Photo.objects.filter(id=photo_id, status=Photo.Status.QUEUED).update(status=Photo.Status.UPLOADED)
        return False
    return True


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

# Rekognition reads JPEG and PNG up to 15 MB; anything else gets a JPEG rendition of at
# most this many pixels a side (well inside every Rekognition limit).
RENDITION_MAX_SIDE = 4096
ANALYSABLE_FORMATS = {"JPEG", "PNG"}
S3_OBJECT_LIMIT = 15 * 1024 * 1024

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

    if not photo_mark_analyzing(photo_id=photo_id):
        return None
    photo = Photo.objects.get(id=photo_id)
    bucket = settings.AWS_STORAGE_BUCKET_NAME or "local"
    fmt = _format_from_key(photo.key)
    if fmt in ANALYSABLE_FORMATS and photo.size <= S3_OBJECT_LIMIT:
        image = ImageRef(bucket=bucket, key=photo.key, etag=photo.etag or photo.sha256, size=photo.size)
    else:
        image = ImageRef(
            bucket=bucket, key=photo.key, etag=photo.etag or photo.sha256, size=photo.size,
            data=_jpeg_rendition(photo),
        )
    record = analyze(image, local_rekognition(), options=AnalyzeOptions())
    return apply_records([record])


def _jpeg_rendition(photo: Photo) -> bytes:
    import io

    from PIL import Image, ImageOps

    with photo.image.open("rb") as handle:
        img = Image.open(handle)
        img.draft("RGB", (RENDITION_MAX_SIDE, RENDITION_MAX_SIDE))
        img = ImageOps.exif_transpose(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
        img.thumbnail((RENDITION_MAX_SIDE, RENDITION_MAX_SIDE))
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


THUMBNAIL_SIDE = 640


def photo_make_thumbnail(*, photo_id: int) -> str | None:
    """Make the photo's JPEG thumbnail: EXIF orientation applied, no EXIF kept (so no
    GPS position leaks), at most THUMBNAIL_SIDE a side. Returns its storage name."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image, ImageOps

    from .models import thumbnail_upload_to

    photo = Photo.objects.filter(id=photo_id).first()
    if photo is None:
        return None
    with photo.image.open("rb") as handle:
        img = Image.open(handle)
        img.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            img = img.convert("RGBA").convert("RGB") if img.mode in ("P", "LA") else img.convert("RGB")
        img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85, optimize=True)  # no exif= argument: nothing carried over
    storage = photo.image.storage
    name = thumbnail_upload_to(photo, "thumbnail.jpg")
    if photo.thumbnail and photo.thumbnail.name:
        storage.delete(photo.thumbnail.name)
    saved = storage.save(name, ContentFile(buf.getvalue()))
    photo_set_thumbnail(photo_id=photo.id, name=saved)
    return saved


MAX_ANALYSIS_ATTEMPTS = 5
SWEEP_BATCH = 500  # photos per sweep; a backlog drains over a few minutes, not in one burst


def photos_sweep_stuck(*, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
    """Re-enqueue photos stuck before analysis (broker down during upload, worker lost
    mid-task); give up, marking them failed, after MAX_ANALYSIS_ATTEMPTS."""
    from datetime import timedelta

    from django.db.models import Q

    if settings.PHOTOS_PIPELINE != "local":
        return {"enqueued": 0, "failed": 0, "found": 0}  # in AWS the S3 event drives analysis
    now = timezone.now()
    stuck = Photo.objects.filter(
        Q(status__in=[Photo.Status.UPLOADED, Photo.Status.QUEUED], updated_at__lt=now - timedelta(seconds=stuck_after_seconds))
        | Q(status=Photo.Status.ANALYZING, updated_at__lt=now - timedelta(seconds=analyzing_after_seconds))
    ).values_list("id", "analysis_attempts")[:SWEEP_BATCH]
    give_up = [pid for pid, attempts in stuck if attempts >= MAX_ANALYSIS_ATTEMPTS]
    retry = [pid for pid, attempts in stuck if attempts < MAX_ANALYSIS_ATTEMPTS]
    if give_up:
        Photo.objects.filter(id__in=give_up).update(
            status=Photo.Status.FAILED, status_reason=f"Gave up after {MAX_ANALYSIS_ATTEMPTS} analysis attempts.", updated_at=now
        )
    if retry:
        # Reset to uploaded so the enqueue marks them queued again with a fresh clock.
        Photo.objects.filter(id__in=retry).update(status=Photo.Status.UPLOADED, updated_at=now)
    enqueued = sum(1 for pid in retry if photo_enqueue_analysis(photo_id=pid))
    return {"enqueued": enqueued, "failed": len(give_up), "found": len(stuck)}
