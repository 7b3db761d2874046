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
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, Callable, Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from infra.functions.labeler.core import error_code
from infra.functions.labeler.record import SORT_KEY, SYNC_INDEX, SYNC_SHARDS, LabelRecord, RecordError, is_tombstone

from .models import Photo, SyncCheckpoint
from .services import ApplyResult, apply_records

logger = logging.getLogger(__name__)

# Items per Query page (DynamoDB also stops a page at 1 MB). One page is applied in one
# transaction: 250 records of ~10 labels take ~0.1 s, few commits, short locks.
PAGE_SIZE = 250
# BatchGetItem takes at most 100 keys.
BATCH_GET_SIZE = 100
LEASE_SECONDS = 300
THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
RETRY_ATTEMPTS = 6
RETRY_BASE_SECONDS = 0.2


class SyncThrottled(Exception):
    """DynamoDB kept throttling past our retry budget; the Celery task retries later."""


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


def dynamodb_table():
    import boto3
    from botocore.config import Config

    if not settings.LABELS_TABLE_NAME:
        raise RuntimeError("LABELS_TABLE_NAME is not set: the DynamoDB sync needs the labels table")
    resource = boto3.resource(
        "dynamodb",
        region_name=settings.AWS_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URL,
        config=Config(retries={"mode": "standard", "max_attempts": 4}),
    )
    return resource.Table(settings.LABELS_TABLE_NAME)


def with_backoff(call: Callable[[], Any], *, attempts: int = RETRY_ATTEMPTS, sleep=time.sleep) -> Any:
    """Call, retrying DynamoDB throttling with exponential backoff and full jitter (on top
    of botocore's own retries); anything else is raised at once."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if error_code(exc) not in THROTTLE_CODES:
                raise
            if attempt == attempts - 1:
                raise SyncThrottled(str(exc)) from exc
            sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


def parse_items(items: Iterable[dict]) -> tuple[list[LabelRecord], int]:
    """LabelRecords of the items (tombstones are not records: see ``erased_keys``)."""
    records, invalid = [], 0
    for item in items:
        if is_tombstone(item):
            continue
        try:
            records.append(LabelRecord.from_item(item))
        except RecordError as exc:
            # One malformed item must not stall the shard: log it loudly and move on;
            # `reconcile_labels --dry-run` lists it again.
            invalid += 1
            logger.error("invalid label record %s: %s", item.get("pk"), exc)
    return records, invalid


def erased_keys(items: Iterable[dict]) -> list[str]:
    """Object keys the items say were erased (deleted in the app or outside it)."""
    return [str(item.get("key") or str(item.get("pk", "")).removeprefix("IMG#")) for item in items if is_tombstone(item)]


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
    from boto3.dynamodb.conditions import Key

    table = table or dynamodb_table()
    overlap = settings.SYNC_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    result = result or SyncResult()
    token = _lease(shard)
    if token is None:
        result.shards[shard] = "busy"
        return result
    try:
        checkpoint = SyncCheckpoint.objects.get(shard=shard).checkpoint
        condition = Key("gsi1pk").eq(f"SYNC#{shard}")
        since = _since(checkpoint, overlap)
        if since:
            condition = condition & Key("updated_at").gt(since)
        query = {"IndexName": SYNC_INDEX, "KeyConditionExpression": condition, "Limit": PAGE_SIZE}
        while True:
            page = with_backoff(lambda: table.query(**query))
            records, invalid = parse_items(page.get("Items", []))
            erased = erased_keys(page.get("Items", []))
            result.invalid += invalid
            result.pages += 1
            newest = max([checkpoint] + [r.updated_at for r in records])
            with transaction.atomic():
                applied = apply_records(records)
                result.add(applied)
                if erased:
                    from .services import photos_erased

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
    parallel = max(1, min(SYNC_SHARDS, parallel or settings.SYNC_PARALLEL_SHARDS))
    from django.db import connection

    if connection.vendor == "sqlite":
        parallel = 1  # one writer at a time is all SQLite offers
    if parallel == 1:
        result = SyncResult()
        table = table or dynamodb_table()
        for shard in range(SYNC_SHARDS):
            sync_shard(shard, table=table, overlap_seconds=overlap_seconds, result=result)
        return result

    def one(shard: int) -> SyncResult:
        from django.db import connection

        try:
            # boto3 resources are not thread-safe: one per thread unless a test passed one.
            return sync_shard(shard, table=table or dynamodb_table(), overlap_seconds=overlap_seconds)
        finally:
            connection.close()

    result = SyncResult()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sync") as pool:
        for partial in pool.map(one, range(SYNC_SHARDS)):
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
    table = table or dynamodb_table()
    response = with_backoff(
        lambda: table.get_item(Key={"pk": f"IMG#{photo.image.name}", "sk": SORT_KEY}, ConsistentRead=True)
    )
    if "Item" not in response:
        return None
    records, _ = parse_items([response["Item"]])
    return apply_records(records)


def sync_photos(photo_ids: Iterable[int], *, table=None, sleep=time.sleep) -> ApplyResult:
    """BatchGetItem the records of many photos and apply them in one call. Keys DynamoDB
    leaves unprocessed are asked for again, with backoff, at most RETRY_ATTEMPTS times;
    then SyncThrottled (the Celery task retries later) rather than looping forever."""
    keys = list(Photo.objects.filter(id__in=list(photo_ids)).values_list("image", flat=True))
    table = table or dynamodb_table()
    client = table.meta.client
    items: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_SIZE):
        request = {table.name: {"Keys": [{"pk": f"IMG#{k}", "sk": SORT_KEY} for k in keys[start : start + BATCH_GET_SIZE]],
                                "ConsistentRead": True}}
        attempt = 0
        while request:
            response = with_backoff(lambda: client.batch_get_item(RequestItems=request))
            items.extend(response.get("Responses", {}).get(table.name, []))
            request = response.get("UnprocessedKeys") or {}
            if request:
                if attempt >= RETRY_ATTEMPTS:
                    raise SyncThrottled(f"DynamoDB left keys unprocessed {attempt} times in a row")
                sleep(random.uniform(0, RETRY_BASE_SECONDS * 2 ** min(attempt, 6)))
                attempt += 1
    records, _ = parse_items(items)
    return apply_records(records)


def scan_records(*, segments: int = 4, table=None, page_size: int = 500) -> Iterator[list[dict]]:
    """Yield pages of raw items from a parallel Scan (one thread per segment). A segment
    that fails stops the others and its error is raised here; the threads never outlive
    the consumer (a full queue cannot hold them, so this never hangs)."""
    import queue
    import threading

    table = table or dynamodb_table()
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
