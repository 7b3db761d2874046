"""The local pipeline: a Celery worker analyses each photo with the local detector
(photos.analysis, the same analysis core as the Lambda) and applies the record straight
to the database."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from functools import cache

from botocore.exceptions import ClientError
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.utils import timezone

from infra.functions.labeler import AnalyzeOptions, ImageRef, analyze, is_transient
from infra.functions.labeler.core import RENDITION_HELPS
from infra.functions.labeler.record import STATUS_FAILED, STATUS_LABELED, AnalysisError, LabelRecord, now_iso
from infra.functions.labeler.timeline import summary_record
from infra.functions.labeler.rendition import RenditionError, analysis_rendition, needs_rendition

from ..apply import ApplyResult, apply_records
from .. import video
from ..models import Photo
from ..renditions import MAX_STILLS, make_thumbnail, save_stills, save_timeline
from .base import Pipeline
from .frames import analyse_video, timeline_of

logger = logging.getLogger(__name__)

MAX_ANALYSIS_ATTEMPTS = 5
SWEEP_BATCH = 500  # photos per sweep; a backlog drains over a few minutes, not in one burst
ANALYSIS_SOFT_LIMIT = 120
ANALYSIS_HARD_LIMIT = 150
# A video's analysis is one image analysis per sampled frame: its time limits grow with
# the frame cap (PHOTOS_VIDEO_MAX_FRAMES) at this many seconds a frame, a few times what
# one core takes (0.2-0.3 s), and stay under the broker's redelivery timeout.
VIDEO_SECONDS_PER_FRAME = 2
VIDEO_HARD_LIMIT_MAX = 3000


def video_time_limits() -> tuple[int, int]:
    """(soft, hard) time limits in seconds of a video's analysis task."""
    soft = min(VIDEO_HARD_LIMIT_MAX - 30, ANALYSIS_SOFT_LIMIT + VIDEO_SECONDS_PER_FRAME * settings.PHOTOS_VIDEO_MAX_FRAMES)
    return soft, soft + 30


def abandoned_q(now, *, prefix: str = "") -> Q:
    """Photos claimed for analysis longer ago than their task could run: their worker died."""
    video_hard = video_time_limits()[1]
    return (Q(**{f"{prefix}status": Photo.Status.ANALYZING}) & (
        Q(**{f"{prefix}kind": Photo.Kind.PHOTO, f"{prefix}updated_at__lt": now - timedelta(seconds=ANALYSIS_HARD_LIMIT + 30)})
        | Q(**{f"{prefix}kind": Photo.Kind.VIDEO, f"{prefix}updated_at__lt": now - timedelta(seconds=video_hard + 30)})))


class LocalPipeline(Pipeline):
    name = "local"

    def enqueue_analysis(self, *, photo_id: int) -> bool:
        # Marked queued first: in eager mode (no Redis) the task runs inside delay().
        Photo.objects.filter(id=photo_id, status=Photo.Status.UPLOADED).update(
            status=Photo.Status.QUEUED, updated_at=timezone.now()
        )
        try:
            if Photo.objects.filter(id=photo_id, kind=Photo.Kind.VIDEO).exists():
                soft, hard = video_time_limits()
                analyze_photo.apply_async((photo_id,), soft_time_limit=soft, time_limit=hard)
            else:
                analyze_photo.delay(photo_id)
            make_thumbnail.delay(photo_id)
        except Exception as exc:  # kombu raises OperationalError and friends
            logger.warning("could not enqueue analysis of photo %s: %s", photo_id, exc)
            Photo.objects.filter(id=photo_id, status=Photo.Status.QUEUED).update(status=Photo.Status.UPLOADED)
            return False
        return True

    def reanalyse(self, *, photo_ids: list[int]) -> int:
        # Back to uploaded (one UPDATE) and onto the queue.
        Photo.objects.filter(id__in=photo_ids).update(status=Photo.Status.UPLOADED, analysis_attempts=0,
                                                     updated_at=timezone.now())
        return sum(1 for pid in photo_ids if self.enqueue_analysis(photo_id=pid))

    def sweep(self, *, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
        """Re-enqueue photos stuck before analysis (broker down during upload, worker lost
        mid-task); give up, marking them failed, after MAX_ANALYSIS_ATTEMPTS."""
        now = timezone.now()
        stuck = Photo.objects.filter(
            Q(status__in=[Photo.Status.UPLOADED, Photo.Status.QUEUED], updated_at__lt=now - timedelta(seconds=stuck_after_seconds))
            | Q(status=Photo.Status.ANALYZING, kind=Photo.Kind.PHOTO,
                updated_at__lt=now - timedelta(seconds=analyzing_after_seconds))
            # A video's analysis may run longer than a photo's by as much as its limit is longer.
            | Q(status=Photo.Status.ANALYZING, kind=Photo.Kind.VIDEO, updated_at__lt=now - timedelta(
                seconds=analyzing_after_seconds + video_time_limits()[1] - ANALYSIS_HARD_LIMIT))
        ).values_list("id", "analysis_attempts")[:SWEEP_BATCH]
        give_up = [pid for pid, attempts in stuck if attempts >= MAX_ANALYSIS_ATTEMPTS]
        retry = [pid for pid, attempts in stuck if attempts < MAX_ANALYSIS_ATTEMPTS]
        if give_up:
            Photo.objects.filter(id__in=give_up).update(
                status=Photo.Status.FAILED, status_reason=f"Gave up after {MAX_ANALYSIS_ATTEMPTS} analysis attempts.",
                updated_at=now,
            )
        if retry:
            # Reset to uploaded so the enqueue marks them queued again with a fresh clock.
            Photo.objects.filter(id__in=retry).update(status=Photo.Status.UPLOADED, updated_at=now)
        enqueued = sum(1 for pid in retry if self.enqueue_analysis(photo_id=pid))
        return {"enqueued": enqueued, "failed": len(give_up), "found": len(stuck)}

    def warm(self) -> None:
        # Sessions made before a fork are not safe in the child: load after it, so the
        # first photo is not slow.
        local_rekognition().warm()


@cache
def local_rekognition():
    """The process-wide LocalRekognition, reading S3Object requests from Django storage."""
    # Imported here, not at the top: it loads onnxruntime, which only the worker needs
    # (the web app imports this module to enqueue).
    from ..analysis import LocalRekognition

    def read(bucket: str, name: str, version: str | None) -> bytes:
        with default_storage.open(name, "rb") as handle:
            return handle.read()

    return LocalRekognition(reader=read, label_models=settings.LOCAL_LABEL_MODELS)


def photo_mark_analyzing(*, photo_id: int) -> bool:
    """Claim a photo for analysis; False if it is analysed already, or another worker is
    analysing it now (a duplicate delivery of the task: it neither runs the analysis a
    second time nor counts towards the give-up limit). A claim older than the hard time
    limit is a worker that died: that photo can be claimed again."""
    now = timezone.now()
    updated = Photo.objects.filter(
        Q(status__in=(Photo.Status.UPLOADED, Photo.Status.QUEUED)) | abandoned_q(now), id=photo_id,
    ).update(status=Photo.Status.ANALYZING, updated_at=now)
    if updated:
        Photo.objects.filter(id=photo_id).update(analysis_attempts=F("analysis_attempts") + 1)
    return bool(updated)


def photo_release(*, photo_id: int) -> None:
    """Give a claimed photo back to the queue (a transient error): the task's retry
    claims it again."""
    Photo.objects.filter(id=photo_id, status=Photo.Status.ANALYZING).update(
        status=Photo.Status.QUEUED, updated_at=timezone.now())


def video_analyze(photo: Photo) -> ApplyResult:
    """A video's analysis: frames sampled (photos/video.py), each analysed by the same
    image core as a photo (frames.py), the results kept as Rekognition Video's responses
    in a timeline object beside the video, and one summary record applied as a photo's is."""
    bucket = settings.AWS_STORAGE_BUCKET_NAME or "local"
    stamp = now_iso()
    template = LabelRecord(bucket=bucket, key=photo.key, etag=photo.etag or photo.sha256, size=photo.size,
                           status=STATUS_LABELED, engine="local", analyzed_at=stamp, updated_at=stamp)
    try:
        with photo.image.open("rb") as handle:
            analysis = analyse_video(handle, client=local_rekognition(), bucket=bucket, key=photo.key,
                                     interval_ms=settings.PHOTOS_VIDEO_SAMPLE_MS,
                                     max_frames=settings.PHOTOS_VIDEO_MAX_FRAMES)
    except video.VideoError as exc:
        return apply_records([replace(template, status=STATUS_FAILED, error=AnalysisError(
            code="InvalidVideo", message=f"The video {exc.message}"[:500]))])
    if not analysis.frames:
        return apply_records([replace(template, status=STATUS_FAILED, error=AnalysisError(
            code="InvalidVideo", message="No frame of the video could be analysed."))])
    timeline = timeline_of(analysis, max_stills=MAX_STILLS)
    save_stills(photo, [analysis.flagged[ms] for ms in timeline["moderation_stills"]])
    save_timeline(photo, timeline)
    return apply_records([summary_record(analysis.frames, replace(template, model_versions=analysis.model_versions))])


def photo_mark_failed(*, photo_id: int, reason: str) -> None:
    """Record a failure that no retry will fix."""
    Photo.objects.filter(id=photo_id).update(status=Photo.Status.FAILED, status_reason=reason[:2000], updated_at=timezone.now())


def photo_analyze(*, photo_id: int) -> ApplyResult | None:
    """Analyse one photo with the local detector and apply the record.

    Returns None when the photo is gone or already analysed (the task is idempotent).
    Rekognition reads JPEG and PNG up to 15 MB; anything else is analysed as a JPEG
    rendition within its limits, made by the same code as in the labeler Lambda.
    Rejections by the detector become a FAILED record; transient errors are raised
    (botocore ClientError) for the task to retry."""
    if not photo_mark_analyzing(photo_id=photo_id):
        return None
    photo = Photo.objects.get(id=photo_id)
    if photo.is_video:
        return video_analyze(photo)
    bucket = settings.AWS_STORAGE_BUCKET_NAME or "local"
    image = ImageRef(bucket=bucket, key=photo.key, etag=photo.etag or photo.sha256, size=photo.size)
    as_stored = None
    if not needs_rendition(photo.key, photo.size):
        as_stored = analyze(image, local_rekognition(), options=AnalyzeOptions())
        # Over 10,000 px a side, or a format its name hides: only the detector's answer
        # says. Then, as the Lambda does, once more through an analysis rendition.
        if as_stored.error is None or as_stored.error.code not in RENDITION_HELPS:
            return apply_records([as_stored])
    try:
        with photo.image.open("rb") as handle:
            image = replace(image, data=analysis_rendition(handle.read(), max_pixels=2 * settings.PHOTOS_MAX_PIXELS))
    except RenditionError as exc:  # as in the Lambda: a FAILED record that says why
        if as_stored is not None and as_stored.error is not None:  # the detector's own reason first
            return apply_records([replace(as_stored, error=AnalysisError(
                code=as_stored.error.code, message=f"{as_stored.error.message} (no rendition either: {exc})"[:500]))])
        stamp = now_iso()
        return apply_records([LabelRecord(bucket=bucket, key=photo.key, etag=image.etag, size=photo.size,
                                          status=STATUS_FAILED, engine="local", analyzed_at=stamp, updated_at=stamp,
                                          error=AnalysisError(code=exc.code, message=str(exc)[:500]))])
    return apply_records([analyze(image, local_rekognition(), options=AnalyzeOptions())])


class TransientAnalysisError(Exception):
    """The detector or a storage read failed in a way worth retrying."""


@shared_task(
    name="photos.tasks.analyze_photo",  # its name from before it moved here: queued messages name it
    acks_late=True,
    autoretry_for=(TransientAnalysisError,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=ANALYSIS_SOFT_LIMIT,
    time_limit=ANALYSIS_HARD_LIMIT,
)
def analyze_photo(photo_id: int) -> str:
    """Analyse a photo and apply its labels. Idempotent: a photo already analysed, or
    deleted, is left alone. Retries only transient errors (throttling, server errors,
    storage hiccups), with backoff and a cap; a timeout marks the photo failed."""
    try:
        result = photo_analyze(photo_id=photo_id)
    except ClientError as exc:
        if is_transient(exc):
            photo_release(photo_id=photo_id)
            raise TransientAnalysisError(str(exc)) from exc
        photo_mark_failed(photo_id=photo_id, reason=f"Analysis error: {exc}")
        return "failed"
    except (ConnectionError, TimeoutError) as exc:
        photo_release(photo_id=photo_id)
        raise TransientAnalysisError(str(exc)) from exc
    except SoftTimeLimitExceeded:
        limit = video_time_limits()[0] if Photo.objects.filter(id=photo_id, kind=Photo.Kind.VIDEO).exists() \
            else ANALYSIS_SOFT_LIMIT
        photo_mark_failed(photo_id=photo_id, reason=f"Analysis took longer than {limit} s.")
        return "timeout"
    except Photo.DoesNotExist:
        logger.info("photo %s vanished during analysis", photo_id)
        return "missing"
    if result is None:
        logger.info("photo %s: nothing to do (missing or already analysed)", photo_id)
        return "skipped"
    return "applied"
