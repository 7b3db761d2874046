"""The AWS pipeline: S3 events reach the labeler Lambda, which writes records to
DynamoDB; Celery beat syncs them into the database. The app talks to the labeler only
through its queue (S3-event-shaped messages) and to the table through
infra/functions/labeler/table.py (tombstones, reads for the sync and the backfill)."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, Q
from django.utils import timezone

from infra.functions.labeler import table as labels
from infra.functions.labeler.events import event_message

from ..apply import ApplyResult
from ..models import Photo
from ..renditions import make_thumbnail
from . import sync
from .base import Pipeline
from .dynamodb import SyncThrottled, batch_get, labels_table, with_backoff

logger = logging.getLogger(__name__)

SEND_BATCH = 10  # SQS SendMessageBatch's limit
BACKFILL_LOOKUP = 50  # object keys per BatchGetItem (each with its tombstone: 100 keys)
# The sweep re-sends a photo to the labeler at most this many times, then marks it failed
# with a reason its owner sees.
MAX_SWEEP_SENDS = 3
SWEEP_BATCH = 500


class AwsPipeline(Pipeline):
    name = "aws"
    syncs_records = True
    backfills = True

    def enqueue_analysis(self, *, photo_id: int) -> bool:
        # The S3 notification starts the analysis; the thumbnail is still ours.
        try:
            make_thumbnail.delay(photo_id)
        except Exception as exc:
            logger.warning("could not enqueue the thumbnail of photo %s: %s", photo_id, exc)
        return False

    def reanalyse(self, *, photo_ids: list[int]) -> int:
        """An S3-event-shaped message per photo (``reanalyse``): the object itself is
        never rewritten (no new version; Content-Type and Cache-Control kept)."""
        now = timezone.now()
        photos = list(Photo.objects.filter(id__in=photo_ids).values_list("id", "image", "size", "etag"))
        sent = 0
        for start in range(0, len(photos), SEND_BATCH):
            batch = [(str(pid), key, size or 0, etag or "") for pid, key, size, etag in photos[start : start + SEND_BATCH]]
            ok = labeler_send(batch, reanalyse=True)
            sent += len(ok)
            # A fresh start: the sweep's tries count from here (an administrator restarting
            # a photo the sweep gave up on must not see it given up at once).
            Photo.objects.filter(id__in=[int(i) for i in ok]).update(status=Photo.Status.QUEUED, updated_at=now,
                                                                     analysis_attempts=0)
        return sent

    def erase(self, *, key: str) -> None:
        """Leave the erasure tombstone for ``key`` and drop its analysis record, in one
        transaction."""
        table = labels_table()
        with_backoff(lambda: labels.erase(table, bucket=settings.AWS_STORAGE_BUCKET_NAME or "", key=key,
                                          reason="deleted in the app"))

    def erased_since(self, since: str) -> list[str]:
        """Tombstones on the sync index updated after ``since``, every shard."""
        table = labels_table()
        keys: list[str] = []
        for shard in range(labels.SYNC_SHARDS):
            query = labels.sync_query(shard, since=since, page_size=1000)
            while True:
                page = with_backoff(lambda: table.query(**query))
                keys += [labels.object_key(item) for item in page.get("Items", []) if labels.is_tombstone(item)]
                if "LastEvaluatedKey" not in page:
                    break
                query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}
        return keys

    def sweep(self, *, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
        """Photos waiting for an analysis longer than AWS_STUCK_AFTER_SECONDS (the labeler's
        back-off included): one whose record is in the table but never synced is pulled in
        now; one with neither a record nor a tombstone (its S3 event was lost, its message
        went to the DLQ) is sent to the labeler again, at most MAX_SWEEP_SENDS times, then
        marked failed with the reason; neither while the live queue still has a backlog
        (a burst draining). Erased ones are the sync's to remove."""
        now = timezone.now()
        waited = max(stuck_after_seconds, settings.AWS_STUCK_AFTER_SECONDS)
        # A video may wait hours for Rekognition Video's jobs quota, then take minutes per
        # job: sent again (which also collects jobs whose completion was lost) only after
        # AWS_VIDEO_STUCK_AFTER_SECONDS.
        video_waited = max(waited, settings.AWS_VIDEO_STUCK_AFTER_SECONDS)
        stuck = list(Photo.objects.filter(
            Q(kind=Photo.Kind.PHOTO, updated_at__lt=now - timedelta(seconds=waited))
            | Q(kind=Photo.Kind.VIDEO, updated_at__lt=now - timedelta(seconds=video_waited)),
            status__in=[Photo.Status.UPLOADED, Photo.Status.QUEUED, Photo.Status.ANALYZING],
        ).order_by("updated_at").values_list("id", "image", "size", "etag", "analysis_attempts")[:SWEEP_BATCH])
        if not stuck:
            return {"enqueued": 0, "failed": 0, "found": 0, "synced": 0}
        missing = set(self.without_analysis([key for _, key, *_ in stuck]))
        recorded = [pid for pid, key, *_ in stuck if key not in missing]
        synced = sync.sync_photos(recorded).applied if recorded else 0
        # Whatever is still waiting is looked at again after another full wait, not every run.
        Photo.objects.filter(id__in=recorded, status__in=[Photo.Status.UPLOADED, Photo.Status.QUEUED,
                                                           Photo.Status.ANALYZING]).update(updated_at=now)
        lost = [(pid, key, size, etag, sends) for pid, key, size, etag, sends in stuck if key in missing]
        if lost and live_backlog():
            # A burst still draining: these may be in it. Neither re-send (that would grow
            # the backlog) nor give up until the queue is drained.
            logger.info("AWS sweep: %s photos without a record wait behind a live backlog", len(lost))
            return {"enqueued": 0, "failed": 0, "found": len(stuck), "synced": synced}
        give_up = [pid for pid, *_, sends in lost if sends >= MAX_SWEEP_SENDS]
        if give_up:
            Photo.objects.filter(id__in=give_up).update(
                status=Photo.Status.FAILED, updated_at=now,
                status_reason=f"No analysis came back after {MAX_SWEEP_SENDS} tries; "
                              "an administrator can start it again.")
        retry = [(str(pid), key, size or 0, etag or "") for pid, key, size, etag, sends in lost if sends < MAX_SWEEP_SENDS]
        sent: set[str] = set()
        for start in range(0, len(retry), SEND_BATCH):
            sent |= labeler_send(retry[start : start + SEND_BATCH], reanalyse=False)
        Photo.objects.filter(id__in=[int(i) for i in sent]).update(
            status=Photo.Status.QUEUED, updated_at=now, analysis_attempts=F("analysis_attempts") + 1)
        logger.info("AWS sweep: %s waiting, %s synced, %s sent again, %s given up", len(stuck), synced, len(sent), len(give_up))
        return {"enqueued": len(sent), "failed": len(give_up), "found": len(stuck), "synced": synced}

    def sync(self) -> dict[str, Any]:
        result = sync.sync_labels()
        heartbeat(applied=result.applied, synced=sum(1 for state in result.shards.values() if state == "synced"))
        return {"shards": result.shards, "applied": result.applied, "stale": result.stale, "invalid": result.invalid}

    def sync_soon(self) -> None:
        sync_labels.delay()

    def refresh(self, *, photo_ids: list[int]) -> ApplyResult:
        return sync.sync_photos(photo_ids)

    def without_analysis(self, keys: list[str]) -> list[str]:
        """The keys among ``keys`` with neither a record nor a tombstone (an erased photo
        stays erased), in their order."""
        table = labels_table()
        known: set[str] = set()
        for start in range(0, len(keys), BACKFILL_LOOKUP):
            chunk = keys[start : start + BACKFILL_LOOKUP]
            known |= {labels.object_key(item) for item in batch_get(table, labels.batch_get_request(table, chunk, tombstones=True))}
        return [key for key in keys if key not in known]

    def backfill(self, objects: list[tuple[str, str, int, str]]) -> set[str]:
        """To the backfill's own queue: a backlog there never delays a live upload."""
        if not settings.LABELER_BACKFILL_QUEUE_URL:
            raise ImproperlyConfigured("The backfill needs LABELER_BACKFILL_QUEUE_URL (the stack's BackfillQueueUrl "
                                       "output): it never shares the live uploads' queue.")
        return labeler_send(objects, reanalyse=False, backfill=True, queue_url=settings.LABELER_BACKFILL_QUEUE_URL)


# The sync's heartbeat: the stack alarms when no sync reported for SYNC_HEARTBEAT_MINUTES
# (infra/resources.py); a run where every shard was busy with another worker still beats.
HEARTBEAT_NAMESPACE = "MediaPipeline"
HEARTBEAT_DIMENSIONS = [{"Name": "service", "Value": "django-sync"}]


def heartbeat(*, applied: int, synced: int) -> None:
    """Tell CloudWatch the sync ran (SyncRuns) and how much it applied (RecordsSynced).
    A failure is logged, never raised: the sync's work is done either way, and the
    missing beat is what the alarm is for."""
    try:
        _cloudwatch(settings.AWS_REGION or "", settings.AWS_ENDPOINT_URL or "").put_metric_data(
            Namespace=HEARTBEAT_NAMESPACE, MetricData=[
                {"MetricName": "SyncRuns", "Dimensions": HEARTBEAT_DIMENSIONS, "Value": 1, "Unit": "Count"},
                {"MetricName": "RecordsSynced", "Dimensions": HEARTBEAT_DIMENSIONS, "Value": applied, "Unit": "Count"},
                {"MetricName": "ShardsSynced", "Dimensions": HEARTBEAT_DIMENSIONS, "Value": synced, "Unit": "Count"},
            ])
    except Exception as exc:
        logger.warning("could not report the sync's heartbeat to CloudWatch: %s", exc)


@cache
def _cloudwatch(region: str, endpoint: str) -> Any:
    return boto3.client("cloudwatch", region_name=region or None, endpoint_url=endpoint or None,
                        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5))


def live_backlog() -> int:
    """Messages waiting on the labeler's live queue (visible, not yet received)."""
    attributes = sqs_client().get_queue_attributes(QueueUrl=settings.LABELER_QUEUE_URL,
                                                   AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))


def sqs_client() -> Any:
    """The SQS client for the settings' region and endpoint (made once per pair)."""
    return _sqs(settings.AWS_REGION or "", settings.AWS_ENDPOINT_URL or "")


@cache
def _sqs(region: str, endpoint: str) -> Any:
    return boto3.client("sqs", region_name=region or None, endpoint_url=endpoint or None,
                        config=Config(retries={"mode": "standard", "max_attempts": 5}))


def labeler_send(objects: list[tuple[str, str, int, str]], *, reanalyse: bool, backfill: bool = False,
                 queue_url: str = "") -> set[str]:
    """Send the labeler's queue (or ``queue_url``) an S3-event-shaped message per (id,
    key, size, etag), at most 10 (one SendMessageBatch); the ids that were sent.
    ``backfill``: the messages say so (a video then waits behind live uploads' videos)."""
    queue_url = queue_url or settings.LABELER_QUEUE_URL
    if not queue_url:
        raise ImproperlyConfigured("Messaging the labeler needs LABELER_QUEUE_URL (the stack's LabelerQueueUrl output).")
    stamp = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    entries = [
        {"Id": ident, "MessageBody": event_message(bucket=settings.AWS_STORAGE_BUCKET_NAME, key=key, size=size, etag=etag,
                                                   event_time=stamp, reanalyse=reanalyse, backfill=backfill)}
        for ident, key, size, etag in objects
    ]
    response = sqs_client().send_message_batch(
        QueueUrl=queue_url, Entries=entries)
    return {e["Id"] for e in response.get("Successful", [])}


@shared_task(
    name="photos.tasks.sync_labels",  # its name from before it moved here: beat entries name it
    autoretry_for=(SyncThrottled,),
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def sync_labels() -> dict:
    """Pull new LabelRecords in from DynamoDB (a stray message on a local install is
    nothing to do)."""
    if settings.PHOTOS_PIPELINE != "aws":
        return {"skipped": "the local pipeline writes records straight to the database"}
    return AwsPipeline().sync()


@shared_task(name="photos.tasks.sync_photo", autoretry_for=(SyncThrottled,), retry_backoff=2, retry_jitter=True,
             max_retries=5)
def sync_photo(photo_id: int) -> int:
    """Refresh one photo from its DynamoDB record (one GetItem)."""
    result = sync.sync_photo(photo_id)
    return result.applied if result else 0
