"""DynamoDB -> Django: the sync of LabelRecords written by the labeler Lambda.

- ``sync_labels``: per shard, query the sync index for ``updated_at`` after the shard's
  checkpoint minus an overlap window (the index is eventually consistent and records are
  written a little after their ``updated_at``), page by page; each page is applied and
  the checkpoint advanced in one transaction, so a sync killed mid-way loses nothing and
  a re-run duplicates nothing. A lease on the shard's row keeps two workers apart.
- ``sync_photo`` / ``sync_photos``: GetItem / BatchGetItem for chosen photos.
- ``scan_records``: a parallel Scan for ``reconcile_labels``.
Every path ends in ``apply_records``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Iterable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from infra.functions.labeler import table as labels
from infra.functions.labeler.record import LabelRecord

from ..apply import ApplyResult, apply_records
from ..models import Photo, SyncCheckpoint
from .dynamodb import batch_get, labels_table, with_backoff
from .tombstones import photos_erased

logger = logging.getLogger(__name__)

# Items per Query page (DynamoDB also stops a page at 1 MB). One page is applied in one
# transaction: 250 records of ~10 labels take ~0.1 s, few commits, short locks.
PAGE_SIZE = 250
# BatchGetItem takes at most 100 keys.
BATCH_GET_SIZE = 100
LEASE_SECONDS = 300


class LeaseLost(Exception):
    """Another worker took the shard over (our lease expired); stop without committing."""


@dataclass
class SyncResult:
    shards: dict[int, str] = field(default_factory=dict)  # shard -> "synced" | "busy"
    applied: int = 0
    stale: int = 0
    invalid: int = 0
    pages: int = 0

    def add(self, result: ApplyResult) -> None:
        self.applied += result.applied
        self.stale += result.stale


def parse_items(items: Iterable[dict]) -> tuple[list[LabelRecord], list[str], int]:
    """The valid records among ``items``, the object keys their tombstones say were
    erased, and how many were invalid (logged loudly: one malformed item must not stall
    a shard; `reconcile_labels --dry-run` lists it again)."""
    records, erased, invalid = labels.records_and_erasures(items)
    for pk, problem in invalid:
        logger.error("invalid label record %s: %s", pk, problem)
    return records, erased, len(invalid)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _since(checkpoint: str, overlap_seconds: float) -> str:
    if not checkpoint:
        return ""
    moment = datetime.strptime(checkpoint, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt_timezone.utc)
    return _stamp(moment - timedelta(seconds=overlap_seconds))


def _lease(shard: int) -> str | None:
    SyncCheckpoint.objects.get_or_create(shard=shard)
    token = str(uuid.uuid4())
    now = timezone.now()
    taken = SyncCheckpoint.objects.filter(
        Q(shard=shard) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    ).update(lease_token=token, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    return token if taken else None


def _release(shard: int, token: str) -> None:
    SyncCheckpoint.objects.filter(shard=shard, lease_token=token).update(lease_token="", lease_until=None)


def sync_shard(shard: int, *, table=None, overlap_seconds: float | None = None, result: SyncResult | None = None) -> SyncResult:
    """Sync one shard of the sync index (see the module docstring for the guarantees)."""
    table = table or labels_table()
    overlap = settings.SYNC_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    result = result or SyncResult()
    token = _lease(shard)
    if token is None:
        result.shards[shard] = "busy"
        return result
    try:
        checkpoint = SyncCheckpoint.objects.get(shard=shard).checkpoint
        query = labels.sync_query(shard, since=_since(checkpoint, overlap), page_size=PAGE_SIZE)
        while True:
            page = with_backoff(lambda: table.query(**query))
            records, erased, invalid = parse_items(page.get("Items", []))
            result.invalid += invalid
            result.pages += 1
            # Tombstones move the checkpoint too: a shard whose newest items are erasures
            # must not re-read (and re-erase) them at every run.
            newest = max([checkpoint] + [r.updated_at for r in records]
                         + [str(i.get("updated_at", "")) for i in page.get("Items", []) if labels.is_tombstone(i)])
            with transaction.atomic():
                applied = apply_records(records)
                result.add(applied)
                if erased:
                    photos_erased(keys=erased)
                renewed = SyncCheckpoint.objects.filter(shard=shard, lease_token=token).update(
                    checkpoint=newest,
                    records_applied=F("records_applied") + applied.applied,
                    lease_until=timezone.now() + timedelta(seconds=LEASE_SECONDS),
                    synced_at=timezone.now(),
                )
                if not renewed:
                    raise LeaseLost(f"shard {shard}: lease lost, page not committed")
            checkpoint = newest
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        result.shards[shard] = "synced"
    finally:
        _release(shard, token)
    return result


def sync_labels(*, table=None, overlap_seconds: float | None = None, parallel: int | None = None) -> SyncResult:
    """Sync every shard once; busy shards (another worker on them) are skipped.

    Shards are independent (own lease, own checkpoint), so ``parallel`` of them run at
    once (SYNC_PARALLEL_SHARDS): one thread's SQL overlaps another's Python work."""
    parallel = max(1, min(labels.SYNC_SHARDS, parallel or settings.SYNC_PARALLEL_SHARDS))
    if connection.vendor == "sqlite":
        parallel = 1  # one writer at a time is all SQLite offers
    if parallel == 1:
        result = SyncResult()
        table = table or labels_table()
        for shard in range(labels.SYNC_SHARDS):
            sync_shard(shard, table=table, overlap_seconds=overlap_seconds, result=result)
        return result

    def one(shard: int) -> SyncResult:
        try:
            # boto3 resources are not thread-safe: labels_table() is this thread's.
            return sync_shard(shard, table=table or labels_table(), overlap_seconds=overlap_seconds)
        finally:
            connection.close()

    result = SyncResult()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sync") as pool:
        for partial in pool.map(one, range(labels.SYNC_SHARDS)):
            result.shards.update(partial.shards)
            result.applied += partial.applied
            result.stale += partial.stale
            result.invalid += partial.invalid
            result.pages += partial.pages
    return result


def sync_photo(photo_id: int, *, table=None) -> ApplyResult | None:
    """Read one photo's record (one consistent GetItem) and apply it. None if the photo
    or its record does not exist."""
    photo = Photo.objects.filter(id=photo_id).only("id", "image").first()
    if photo is None:
        return None
    table = table or labels_table()
    item = with_backoff(lambda: labels.get_record_item(table, photo.image.name))
    if item is None:
        return None
    records, _, _ = parse_items([item])
    return apply_records(records)


def sync_photos(photo_ids: Iterable[int], *, table=None, sleep=time.sleep) -> ApplyResult:
    """BatchGetItem the records of many photos and apply them in one call. Keys DynamoDB
    leaves unprocessed are asked for again, with backoff, at most RETRY_ATTEMPTS times;
    then SyncThrottled (the Celery task retries later) rather than looping forever."""
    keys = list(Photo.objects.filter(id__in=list(photo_ids)).values_list("image", flat=True))
    table = table or labels_table()
    items: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_SIZE):
        items += batch_get(table, labels.batch_get_request(table, keys[start : start + BATCH_GET_SIZE]), sleep=sleep)
    records, _, _ = parse_items(items)
    return apply_records(records)


def scan_records(*, segments: int = 4, table=None, page_size: int = 500) -> Iterator[list[dict]]:
    """Yield pages of raw items from a parallel Scan (one thread per segment). A segment
    that fails stops the others and its error is raised here; the threads never outlive
    the consumer (a full queue cannot hold them, so this never hangs)."""
    table = table or labels_table()
    pages: queue.Queue = queue.Queue(maxsize=segments * 2)
    done = object()
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                pages.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def scan(segment: int) -> None:
        try:
            kwargs = {"Segment": segment, "TotalSegments": segments, "Limit": page_size}
            while not stop.is_set():
                page = with_backoff(lambda: table.scan(**kwargs))
                if not put(page.get("Items", [])) or "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            put(done)

    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="scan") as pool:
        for segment in range(segments):
            pool.submit(scan, segment)
        try:
            finished = 0
            while finished < segments:
                page = pages.get()
                if page is done:
                    finished += 1
                elif isinstance(page, BaseException):
                    raise page
                else:
                    yield page
        finally:
            stop.set()
