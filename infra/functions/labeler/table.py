"""The labels table: the only place its keys are spelled and its items are read or
written. The labeler, the Django sync, erasure and the backfill all go through here.

Layout (one partition per object key):
- ``pk = "IMG#<key>"``, ``sk = "ANALYSIS"``: the key's LabelRecord, with the S3
  sequencer of the event it answers (``s3_sequencer``);
- ``pk = "IMG#<key>"``, ``sk = "ERASED"``: the erasure tombstone. Once written, no
  replayed event, retry or reconcile brings the photo back;
- ``pk = "IMG#<key>"``, ``sk = "VIDEOJOBS"``: a video's Rekognition Video jobs while
  they run (their ids, each one's status, the version's tag); gone once the collector
  has written the record, or with the erasure (a late completion then writes nothing);
- the sync index ``gsi1pk = "SYNC#<shard>"``, sorted by ``updated_at``, holds the record
  and the tombstone, so the Django sync sees new records and erasures alike.

Functions take the boto3 ``Table`` resource: the Lambda and the web app each make
theirs once. Standard library only (the Lambda asset holds nothing else).
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any, Iterable

from .core import error_code
from .parsing import parse_record
from .record import LabelRecord, RecordError, now_iso
from .video_jobs import stream_key

SORT_KEY = "ANALYSIS"
TOMBSTONE_SORT_KEY = "ERASED"
JOBS_SORT_KEY = "VIDEOJOBS"
ALIAS_SORT_KEY = "VIDEOJOBSFOR"  # on a stream rendition's partition: the video it stands for
JOB_RUNNING = "RUNNING"
# The sync index: partition gsi1pk = "SYNC#<shard>", sort key updated_at.
SYNC_INDEX = "sync"
# Shards spread the sync index's writes over several partitions. Changing this
# number re-shards every record, so it is a constant of the schema, not a setting.
SYNC_SHARDS = 4
# DynamoDB refuses items over 400 KB: the record sheds word detections, then labels,
# past this estimate (record.py's caps keep a real record far below it).
ITEM_BUDGET_BYTES = 350_000
_PARTITION = "IMG#"
_SYNC_PARTITION = "SYNC#"


def shard_for(key: str) -> int:
    """Stable shard of an object key (the same in every process and language)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % SYNC_SHARDS


def partition(key: str) -> str:
    return f"{_PARTITION}{key}"


def sync_partition(shard: int) -> str:
    return f"{_SYNC_PARTITION}{shard}"


def record_key(key: str) -> dict[str, str]:
    """The primary key of ``key``'s analysis record."""
    return {"pk": partition(key), "sk": SORT_KEY}


def tombstone_key(key: str) -> dict[str, str]:
    return {"pk": partition(key), "sk": TOMBSTONE_SORT_KEY}


def object_key(item: dict[str, Any]) -> str:
    """The object key an item is about."""
    return str(item.get("key") or str(item.get("pk", "")).removeprefix(_PARTITION))


# --- items ------------------------------------------------------------------------------


def item_of(record: LabelRecord) -> dict[str, Any]:
    """A DynamoDB item (numbers as Decimal), capped to stay under 400 KB."""
    record = record.capped()
    item = _to_dynamo(record.to_dict())
    if item["error"] is None:
        del item["error"]
    item.update(record_key(record.key), gsi1pk=sync_partition(shard_for(record.key)))
    # Word detections are the most numerous and least curated part: shed them
    # first if a pathological image still produces an oversized item.
    while _estimated_size(item) > ITEM_BUDGET_BYTES and item["text"]:
        item["text"] = item["text"][: len(item["text"]) // 2]
    while _estimated_size(item) > ITEM_BUDGET_BYTES and item["labels"]:
        item["labels"] = item["labels"][: len(item["labels"]) // 2]
    return item


def record_of(item: dict[str, Any]) -> LabelRecord:
    """Parse and validate a DynamoDB item. Raises RecordError naming the first bad
    field, e.g. ``labels[2].confidence``."""
    record = parse_record(item)
    if "pk" in item and item["pk"] != partition(record.key):
        raise RecordError("pk", f"does not match key {record.key!r}")
    return record


def tombstone_item(*, bucket: str, key: str, at: str, reason: str) -> dict[str, Any]:
    return {**tombstone_key(key), "bucket": bucket, "key": key, "erased_at": at, "reason": reason[:200],
            "updated_at": at, "gsi1pk": sync_partition(shard_for(key))}


def is_tombstone(item: dict[str, Any]) -> bool:
    return item.get("sk") == TOMBSTONE_SORT_KEY


def records_and_erasures(items: Iterable[dict]) -> tuple[list[LabelRecord], list[str], list[tuple[str, str]]]:
    """Split items into valid records, erased object keys, and (pk, problem) for every
    item that is not a valid record (one malformed item must not stall a sync)."""
    records, erased, invalid = [], [], []
    for item in items:
        if is_tombstone(item):
            erased.append(object_key(item))
            continue
        try:
            records.append(record_of(item))
        except RecordError as exc:
            invalid.append((str(item.get("pk")), str(exc)))
    return records, erased, invalid


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError("<number>", f"not finite: {value!r}")
        # Rounded through str so 0.1 is stored as 0.1, not its binary expansion.
        return Decimal(str(round(value, 6)))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    raise RecordError("<value>", f"unsupported type {type(value).__name__}")


def _estimated_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, default=str, ensure_ascii=False).encode("utf-8"))


# --- reads and writes -------------------------------------------------------------------


def stored_state(table: Any, key: str) -> tuple[bool, str]:
    """(erased, the stored record's S3 sequencer or "") for ``key``: one strongly
    consistent Query on its partition reads both. A placeholder (``put_placeholder``)
    answers the event it waits for: later events and re-analyses order after that one."""
    return stored(table, key)[:2]


def stored(table: Any, key: str) -> tuple[bool, str, str]:
    """``stored_state`` and, for a placeholder, the sequencer of the event it waits for
    ("" otherwise), from the same Query."""
    items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": partition(key)}, ConsistentRead=True,
        ProjectionExpression="sk, s3_sequencer, waiting_for",
    ).get("Items", [])
    by_sort_key = {item["sk"]: item for item in items}
    record = by_sort_key.get(SORT_KEY, {})
    waiting = str(record.get("waiting_for", ""))
    return TOMBSTONE_SORT_KEY in by_sort_key, waiting or str(record.get("s3_sequencer", "")), waiting


def put_placeholder(table: Any, record: LabelRecord, sequencer: str) -> str:
    """A record that says why there is no analysis yet (a video waiting for its stream),
    written only where the key has no record at all and no tombstone. Its own sequencer
    sorts just before the event's (a prefix sorts first), so the event's analysis replaces
    it; ``waiting_for`` keeps the event's, so later events and re-analyses order after it
    (``stored_state``). "written", "erased" or "stale" (a record is there)."""
    item = {**item_of(record), "s3_sequencer": sequencer[:-1], "waiting_for": sequencer}
    try:
        table.meta.client.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": table.name, "Key": tombstone_key(record.key),
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table.name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    except Exception as exc:
        failed = failed_condition(exc)
        if failed in (0, 1):
            return ("erased", "stale")[failed]
        raise
    return "written"


def put_record(table: Any, record: LabelRecord, sequencer: str) -> str:
    """Write unless the photo was erased or a record from the same or a later event is
    there, in one transaction (a tombstone written meanwhile wins): "written", "erased"
    or "stale"."""
    item = item_of(record)
    item["s3_sequencer"] = sequencer
    try:
        table.meta.client.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": table.name, "Key": tombstone_key(record.key),
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table.name, "Item": item,
                     "ConditionExpression": "attribute_not_exists(pk) OR s3_sequencer < :seq",
                     "ExpressionAttributeValues": {":seq": sequencer}}},
        ])
    except Exception as exc:
        failed = failed_condition(exc)
        if failed == 0:
            return "erased"
        if failed == 1:
            return "stale"
        raise
    return "written"


def failed_condition(exc: BaseException) -> int | None:
    """Which write of a cancelled transaction failed its condition (its index), or None
    for any other error (the caller raises it)."""
    if error_code(exc) != "TransactionCanceledException":
        return None
    reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
    return reasons.index("ConditionalCheckFailed") if "ConditionalCheckFailed" in reasons else None


def erase(table: Any, *, bucket: str, key: str, reason: str) -> None:
    """Leave the tombstone and drop the analysis and any running video jobs' item, in
    one transaction: either all happen or none does."""
    tombstone = tombstone_item(bucket=bucket, key=key, at=now_iso(), reason=reason)
    table.meta.client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table.name, "Item": tombstone}},
        {"Delete": {"TableName": table.name, "Key": record_key(key)}},
        {"Delete": {"TableName": table.name, "Key": jobs_key(key)}},
        {"Delete": {"TableName": table.name, "Key": alias_key(stream_key(key))}},
    ])


# --- a video's running jobs -------------------------------------------------------------


def jobs_key(key: str) -> dict[str, str]:
    return {"pk": partition(key), "sk": JOBS_SORT_KEY}


def alias_key(analysed: str) -> dict[str, str]:
    return {"pk": partition(analysed), "sk": ALIAS_SORT_KEY}


def video_of(table: Any, analysed: str) -> str | None:
    """The video a stream rendition was analysed for, or None."""
    item = table.get_item(Key=alias_key(analysed), ConsistentRead=True).get("Item")
    return str(item["video_key"]) if item else None


def open_jobs(table: Any, *, bucket: str, key: str, tag: str, apis: list[str], sequencer: str, etag: str,
              size: int, alias: str | None = None) -> str:
    """Before a video's first job starts: its jobs item (which jobs are expected, none
    noted yet), with the alias of the stream rendition analysed for it if any, unless the
    photo was erased ("erased"), this version's item is there already ("exists", its notes
    and statuses kept) or a later event's is ("superseded"); "opened" if written now. Only
    a later event (S3 sequencer) replaces another's jobs."""
    item = {**jobs_key(key), "bucket": bucket, "key": key, "tag": tag, "s3_sequencer": sequencer, "etag": etag,
            "size": int(size), "started_at": now_iso(), "expected": list(apis), "jobs": {}}
    writes: list[dict[str, Any]] = [
        {"ConditionCheck": {"TableName": table.name, "Key": tombstone_key(key),
                            "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": table.name, "Item": item,
                 "ConditionExpression": "attribute_not_exists(pk) OR (#tag <> :tag AND s3_sequencer < :seq)",
                 "ExpressionAttributeNames": {"#tag": "tag"},
                 "ExpressionAttributeValues": {":tag": tag, ":seq": sequencer}}},
    ]
    if alias:
        writes.append({"Put": {"TableName": table.name, "Item": {**alias_key(alias), "video_key": key}}})
    try:
        table.meta.client.transact_write_items(TransactItems=writes)
    except Exception as exc:
        failed = failed_condition(exc)
        if failed == 0:
            return "erased"
        if failed == 1:
            current = running_jobs(table, key)
            return "exists" if current is not None and current.get("tag") == tag else "superseded"
        raise
    return "opened"


def note_job(table: Any, *, key: str, tag: str, api: str, job_id: str) -> dict[str, Any] | None:
    """Note a started job (kept as it is if its completion got there first); the jobs item
    as it is now, or None if it is not this version's any more (erased, superseded)."""
    try:
        return table.update_item(
            Key=jobs_key(key), UpdateExpression="SET jobs.#api = if_not_exists(jobs.#api, :job)",
            ConditionExpression="#tag = :tag", ExpressionAttributeNames={"#api": api, "#tag": "tag"},
            ExpressionAttributeValues={":job": {"job_id": job_id, "status": JOB_RUNNING, "reason": ""}, ":tag": tag},
            ReturnValues="ALL_NEW")["Attributes"]
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise


def job_finished(table: Any, *, key: str, tag: str, api: str, job_id: str, status: str,
                 reason: str = "") -> dict[str, Any] | None:
    """Set one job's final status (noting the job too, if its start is not noted yet);
    the jobs item as it is now, or None if it is not this job's (erased, collected
    already, or superseded by a newer version's jobs)."""
    try:
        return table.update_item(
            Key=jobs_key(key), UpdateExpression="SET jobs.#api = :job",
            ConditionExpression="#tag = :tag AND (attribute_not_exists(jobs.#api) OR jobs.#api.job_id = :id)",
            ExpressionAttributeNames={"#api": api, "#tag": "tag"},
            ExpressionAttributeValues={":job": {"job_id": job_id, "status": status, "reason": reason[:500]},
                                       ":tag": tag, ":id": job_id},
            ReturnValues="ALL_NEW")["Attributes"]
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise


def drop_jobs(table: Any, *, key: str, tag: str) -> None:
    """Forget a video's jobs once collected (only these: a newer version's stay), and the
    alias of its stream rendition."""
    try:
        table.delete_item(Key=jobs_key(key), ConditionExpression="#tag = :tag", ExpressionAttributeNames={"#tag": "tag"},
                          ExpressionAttributeValues={":tag": tag})
    except Exception as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        return
    table.delete_item(Key=alias_key(stream_key(key)))


def running_jobs(table: Any, key: str) -> dict[str, Any] | None:
    return table.get_item(Key=jobs_key(key), ConsistentRead=True).get("Item")


def get_record_item(table: Any, key: str) -> dict[str, Any] | None:
    """``key``'s record item (one consistent GetItem), or None."""
    return table.get_item(Key=record_key(key), ConsistentRead=True).get("Item")


def batch_get_request(table: Any, keys: Iterable[str], *, tombstones: bool = False) -> dict[str, Any]:
    """A BatchGetItem request for the records of ``keys`` (and their tombstones): at most
    100 keys, so 100 object keys, or 50 with their tombstones."""
    wanted = [record_key(k) for k in keys] + ([tombstone_key(k) for k in keys] if tombstones else [])
    request: dict[str, Any] = {"Keys": wanted, "ConsistentRead": True}
    if tombstones:
        request["ProjectionExpression"] = "pk"
    return {table.name: request}


def sync_query(shard: int, *, since: str, page_size: int) -> dict[str, Any]:
    """The Query for one shard of the sync index, items updated after ``since``
    ("" for all)."""
    condition, values = "gsi1pk = :shard", {":shard": sync_partition(shard)}
    if since:
        condition += " AND updated_at > :since"
        values[":since"] = since
    return {"IndexName": SYNC_INDEX, "KeyConditionExpression": condition, "ExpressionAttributeValues": values,
            "Limit": page_size}

