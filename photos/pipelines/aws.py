"""The AWS pipeline: S3 events reach the labeler Lambda, which writes records to
DynamoDB; Celery beat syncs them into the database. The app talks to the labeler only
through its queue (S3-event-shaped messages) and to the table only for tombstones."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .base import Pipeline

logger = logging.getLogger(__name__)

SEND_BATCH = 10  # SQS SendMessageBatch's limit


class AwsPipeline(Pipeline):
    name = "aws"
    syncs_records = True
    backfills = True

    def enqueue_analysis(self, *, photo_id: int) -> bool:
        from photos.tasks import make_thumbnail

        # The S3 notification starts the analysis; the thumbnail is still ours.
        try:
            make_thumbnail.delay(photo_id)
        except Exception as exc:
            logger.warning("could not enqueue the thumbnail of photo %s: %s", photo_id, exc)
        return False

    def reanalyse(self, *, photo_ids: list[int]) -> int:
        """An S3-event-shaped message per photo (``reanalyse``): the object itself is
        never rewritten (no new version; Content-Type and Cache-Control kept)."""
        from photos.models import Photo

        now = timezone.now()
        photos = list(Photo.objects.filter(id__in=photo_ids).values_list("id", "image", "size", "etag"))
        sent = 0
        for start in range(0, len(photos), SEND_BATCH):
            batch = [(str(pid), key, size or 0, etag or "") for pid, key, size, etag in photos[start : start + SEND_BATCH]]
            ok = labeler_send(batch, reanalyse=True)
            sent += len(ok)
            Photo.objects.filter(id__in=[int(i) for i in ok]).update(status=Photo.Status.QUEUED, updated_at=now)
        return sent

    def erase(self, *, key: str) -> None:
        """Leave the erasure tombstone for ``key`` and drop its analysis record."""
        from infra.functions.labeler.record import SORT_KEY, now_iso, tombstone_item
        from photos.sync import dynamodb_table, with_backoff

        table = dynamodb_table()
        tombstone = tombstone_item(bucket=settings.AWS_STORAGE_BUCKET_NAME or "", key=key, at=now_iso(),
                                   reason="deleted in the app")
        with_backoff(lambda: table.put_item(Item=tombstone))
        with_backoff(lambda: table.delete_item(Key={"pk": f"IMG#{key}", "sk": SORT_KEY}))

    def sync(self) -> dict[str, Any]:
        from photos import sync

        result = sync.sync_labels()
        return {"shards": result.shards, "applied": result.applied, "stale": result.stale, "invalid": result.invalid}

    def periodic_tasks(self) -> dict[str, dict[str, Any]]:
        return {"sync-labels": {"task": "photos.tasks.sync_labels", "schedule": settings.SYNC_INTERVAL_SECONDS}}

    def backfill(self, objects: list[tuple[str, str, int, str]]) -> set[str]:
        return labeler_send(objects, reanalyse=False)


def labeler_send(objects: list[tuple[str, str, int, str]], *, reanalyse: bool) -> set[str]:
    """Send the labeler's queue an S3-event-shaped message per (id, key, size, etag), at
    most 10 (one SendMessageBatch); the ids that were sent."""
    import boto3

    from infra.functions.labeler.messages import event_message

    if not settings.LABELER_QUEUE_URL:
        raise ImproperlyConfigured("Messaging the labeler needs LABELER_QUEUE_URL (the stack's LabelerQueueUrl output).")
    sqs = boto3.client("sqs", region_name=settings.AWS_REGION or None, endpoint_url=settings.AWS_ENDPOINT_URL or None)
    stamp = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    entries = [
        {"Id": ident, "MessageBody": event_message(bucket=settings.AWS_STORAGE_BUCKET_NAME, key=key, size=size, etag=etag,
                                                   event_time=stamp, reanalyse=reanalyse)}
        for ident, key, size, etag in objects
    ]
    response = sqs.send_message_batch(QueueUrl=settings.LABELER_QUEUE_URL, Entries=entries)
    return {e["Id"] for e in response.get("Successful", [])}
