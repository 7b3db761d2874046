"""Celery tasks of the library: thin wrappers around services, taking ids, never model
instances. The pipelines' own tasks (analysis, thumbnails, the DynamoDB sync) live with
their code (photos/pipelines/, photos/renditions.py) and are registered by importing it
here, which is the module Celery's autodiscovery imports."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import PendingErasure
from .pipelines import aws, local, pipeline  # noqa: F401  (aws, local: register their tasks with the worker)
from .pipelines.erasures import erasure_queue, erasures_finish
from .selectors.suggestions import count_public_labels as recount_public_labels
from .services import erasure, photos

# How far back the erasure check looks for tombstones whose bytes might have outlived them.
ERASURE_CHECK_DAYS = 7

# No analysis outlives its hard time limit: a photo still "analyzing" this long after its
# last update lost its worker (killed, out of memory) and is picked up again at the
# sweeper's next run (every minute), not ten minutes later.
ANALYZING_ABANDONED_SECONDS = local.ANALYSIS_HARD_LIMIT + 30


@shared_task
def sweep_stuck_photos() -> dict[str, int]:
    """Re-enqueue photos stuck in uploaded/queued/analyzing (see the pipelines)."""
    return photos.photos_sweep_stuck(
        stuck_after_seconds=settings.PHOTOS_STUCK_AFTER_SECONDS,
        analyzing_after_seconds=ANALYZING_ABANDONED_SECONDS,
    )


@shared_task
def sweep_renditions() -> dict[str, int]:
    """Ask again for thumbnails and video streams that were never made (services.photos)."""
    return photos.renditions_sweep()


@shared_task(acks_late=True)
def erase_photos(photo_ids: list[int], actor_id: int) -> int:
    """Delete photos for good on behalf of ``actor_id`` (a bulk "Delete for good"); each
    through photo_delete, which checks the permission again."""
    actor = get_user_model().objects.filter(pk=actor_id).first()
    if actor is None:
        return 0
    return sum(1 for pid in photo_ids if erasure.photo_delete(photo_id=pid, actor=actor))


@shared_task
def purge_trash() -> int:
    """Erase photos that have been in their owner's trash for 30 days."""
    return erasure.photos_purge_trash()


@shared_task
def finish_erasures() -> dict[str, int]:
    """Retry the erasures whose files are not all gone yet (the erasure outbox)."""
    return erasures_finish()


@shared_task
def check_erasures() -> int:
    """Every key erased in the last ERASURE_CHECK_DAYS goes through the outbox once more:
    the outbox lists its versions and deletes whatever is there (an object written after
    the erasure, a version a failed delete left). How many keys were queued."""
    since = (timezone.now() - timedelta(days=ERASURE_CHECK_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    keys = set(pipeline().erased_since(since)) - set(PendingErasure.objects.values_list("key", flat=True))
    for key in sorted(keys):
        erasure_queue(key=key, names=[key], reason="erasure check")
    return len(keys)


@shared_task
def count_public_labels() -> int:
    """Recount how many public photos show each label: the gallery's suggestions."""
    return recount_public_labels()
