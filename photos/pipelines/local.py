"""The local pipeline: a Celery worker analyses each photo with the local detector
(photos.analysis) and applies the record straight to the database."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .base import Pipeline

logger = logging.getLogger(__name__)

MAX_ANALYSIS_ATTEMPTS = 5
SWEEP_BATCH = 500  # photos per sweep; a backlog drains over a few minutes, not in one burst


class LocalPipeline(Pipeline):
    name = "local"

    def enqueue_analysis(self, *, photo_id: int) -> bool:
        from photos.models import Photo
        from photos.tasks import analyze_photo, make_thumbnail

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

    def reanalyse(self, *, photo_ids: list[int]) -> int:
        from photos.models import Photo

        # Back to uploaded (one UPDATE) and onto the queue.
        Photo.objects.filter(id__in=photo_ids).update(status=Photo.Status.UPLOADED, analysis_attempts=0,
                                                     updated_at=timezone.now())
        return sum(1 for pid in photo_ids if self.enqueue_analysis(photo_id=pid))

    def sweep(self, *, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
        """Re-enqueue photos stuck before analysis (broker down during upload, worker lost
        mid-task); give up, marking them failed, after MAX_ANALYSIS_ATTEMPTS."""
        from photos.models import Photo

        now = timezone.now()
        stuck = Photo.objects.filter(
            Q(status__in=[Photo.Status.UPLOADED, Photo.Status.QUEUED], updated_at__lt=now - timedelta(seconds=stuck_after_seconds))
            | Q(status=Photo.Status.ANALYZING, updated_at__lt=now - timedelta(seconds=analyzing_after_seconds))
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
        from photos.services import local_rekognition

        local_rekognition().warm()
