"""Celery tasks: thin wrappers around services. They take ids, never model instances."""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from infra.functions.labeler import is_transient

from . import services, sync
from .pipelines import pipeline
from .sync import SyncThrottled as SyncThrottledError

logger = logging.getLogger(__name__)

ANALYSIS_SOFT_LIMIT = 120
ANALYSIS_HARD_LIMIT = 150
# No analysis outlives its hard time limit: a photo still "analyzing" this long after its
# last update lost its worker (killed, out of memory) and is picked up again at the
# sweeper's next run (every minute), not ten minutes later.
ANALYZING_ABANDONED_SECONDS = ANALYSIS_HARD_LIMIT + 30


class TransientAnalysisError(Exception):
    """The detector or a storage read failed in a way worth retrying."""


@shared_task(
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
        result = services.photo_analyze(photo_id=photo_id)
    except ClientError as exc:
        if is_transient(exc):
            raise TransientAnalysisError(str(exc)) from exc
        services.photo_mark_failed(photo_id=photo_id, reason=f"Analysis error: {exc}")
        return "failed"
    except (ConnectionError, TimeoutError) as exc:
        raise TransientAnalysisError(str(exc)) from exc
    except SoftTimeLimitExceeded:
        services.photo_mark_failed(photo_id=photo_id, reason=f"Analysis took longer than {ANALYSIS_SOFT_LIMIT} s.")
        return "timeout"
    except services.Photo.DoesNotExist:
        logger.info("photo %s vanished during analysis", photo_id)
        return "missing"
    if result is None:
        logger.info("photo %s: nothing to do (missing or already analysed)", photo_id)
        return "skipped"
    return "applied"


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def make_thumbnail(photo_id: int) -> str | None:
    """Make the photo's thumbnail (orientation applied, EXIF and GPS stripped)."""
    try:
        return services.photo_make_thumbnail(photo_id=photo_id)
    except FileNotFoundError:
        logger.warning("photo %s: image missing from storage, no thumbnail", photo_id)
        return None
    except (OSError, services.RenditionError) as exc:
        logger.warning("photo %s: cannot make a thumbnail: %s", photo_id, exc)
        return None


@shared_task
def sweep_stuck_photos() -> dict[str, int]:
    """Re-enqueue photos stuck in uploaded/queued/analyzing (see services)."""
    return services.photos_sweep_stuck(
        stuck_after_seconds=settings.PHOTOS_STUCK_AFTER_SECONDS,
        analyzing_after_seconds=ANALYZING_ABANDONED_SECONDS,
    )


@shared_task(acks_late=True)
def erase_photos(photo_ids: list[int], actor_id: int) -> int:
    """Delete photos for good on behalf of ``actor_id`` (a bulk "Delete for good"); each
    through photo_delete, which checks the permission again."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first()
    if actor is None:
        return 0
    return sum(1 for pid in photo_ids if services.photo_delete(photo_id=pid, actor=actor))


@shared_task
def purge_trash() -> int:
    """Erase photos that have been in their owner's trash for 30 days."""
    return services.photos_purge_trash()


@shared_task(
    autoretry_for=(SyncThrottledError,),
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def sync_labels() -> dict:
    """Pull new LabelRecords in, where the pipeline keeps them elsewhere (DynamoDB)."""
    return pipeline().sync()


@shared_task(autoretry_for=(SyncThrottledError,), retry_backoff=2, retry_jitter=True, max_retries=5)
def sync_photo(photo_id: int) -> int:
    """Refresh one photo from its DynamoDB record (one GetItem)."""
    result = sync.sync_photo(photo_id)
    return result.applied if result else 0
