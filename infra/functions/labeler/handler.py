"""Lambda handler: S3 ObjectCreated events, delivered through SQS, to LabelRecords in
DynamoDB; ObjectRemoved events to tombstones (erasure).

Thin on purpose: parse the SQS batch and the S3 events inside each message, call the
analysis core per object, write the record with a conditional put, and report as batch
item failures exactly the messages worth retrying. Needs nothing beyond the Lambda
runtime's boto3.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .core import AnalyzeOptions, ImageRef, analyze, error_code, is_transient
from .record import SORT_KEY, STATUS_SKIPPED, TOMBSTONE_SORT_KEY, AnalysisError, LabelRecord, now_iso, tombstone_item

UPLOAD_PREFIX = os.environ.get("UPLOAD_PREFIX", "uploads/")
# Rekognition reads JPEG and PNG only; other accepted uploads get a SKIPPED record. The
# bucket notifies every object under the prefix (S3 suffix filters are case-sensitive:
# "Chelsea.JPG" put straight into the bucket must be analysed too); suffixes are compared
# in lower case here.
ANALYSABLE_SUFFIXES = (".jpg", ".jpeg", ".png")
SKIPPED_SUFFIXES = (".webp",)
SEQUENCER_WIDTH = 32  # S3 sequencers differ in length: left-pad to compare as strings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": record.levelname, "message": record.getMessage(), "logger": record.name}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


logger = logging.getLogger("labeler")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(JsonFormatter())
    logger.addHandler(_handler)
    logger.propagate = False
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


def log(level: int, message: str, *, exc_info: bool = False, **fields: Any) -> None:
    logger.log(level, message, exc_info=exc_info, extra={"fields": fields})


# Module-level clients, created on first use (not at import) so tests and the local
# runner can put their own in place.
REKOGNITION: Any = None
TABLE: Any = None
SQS: Any = None
# A message that failed for a transient reason (Rekognition or DynamoDB throttling, a
# server error) is hidden for BASE x 2^(receives - 1) seconds, +-20 %, at most MAX,
# instead of coming back after the queue's visibility timeout: a throttled burst backs
# off rather than burning its receive count (5) and landing in the DLQ.
# Bounded work: one SDK call takes at most SDK_ATTEMPTS x (connect + read timeout) plus
# the standard mode's backoff (under 1 s + 2 s); an image is its three Rekognition calls
# (in parallel) and two DynamoDB calls in a row (read what is stored, write), so at
# most IMAGE_WORST_CASE_SECONDS.
# A message is started only with that much of the function's time left; the rest of the
# batch is reported failed (and retried) instead of being cut off by the timeout.
SDK_ATTEMPTS = 3
SDK_CONNECT_TIMEOUT = 3
SDK_READ_TIMEOUT = 10
SDK_CALL_WORST_CASE_SECONDS = SDK_ATTEMPTS * (SDK_CONNECT_TIMEOUT + SDK_READ_TIMEOUT) + 3
IMAGE_WORST_CASE_SECONDS = 3 * SDK_CALL_WORST_CASE_SECONDS
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900
_queue_urls: dict[str, str] = {}


def clients() -> tuple[Any, Any]:
    global REKOGNITION, TABLE
    if REKOGNITION is None or TABLE is None:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": SDK_ATTEMPTS},
                        connect_timeout=SDK_CONNECT_TIMEOUT, read_timeout=SDK_READ_TIMEOUT)
        if REKOGNITION is None:
            REKOGNITION = boto3.client("rekognition", config=config)
        if TABLE is None:
            TABLE = boto3.resource("dynamodb", config=config).Table(os.environ["LABELS_TABLE_NAME"])
    return REKOGNITION, TABLE


def sqs_client() -> Any:
    global SQS
    if SQS is None:
        import boto3

        SQS = boto3.client("sqs")
    return SQS


def back_off(message: dict[str, Any]) -> int | None:
    """Hide a transiently failed message for longer each time it comes back; the delay
    set, or None if it could not be set (the queue's own timeout then applies)."""
    receives = int(message.get("attributes", {}).get("ApproximateReceiveCount") or 1)
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, receives - 1))
    delay = max(1, int(delay * random.uniform(0.8, 1.2)))
    arn = message.get("eventSourceARN", "")
    try:
        if arn not in _queue_urls:
            _, _, _, _region, account, name = arn.split(":", 5)
            _queue_urls[arn] = sqs_client().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs_client().change_message_visibility(
            QueueUrl=_queue_urls[arn], ReceiptHandle=message["receiptHandle"], VisibilityTimeout=delay
        )
    except Exception as exc:  # the failure is still reported; only the delay is lost
        log(logging.WARNING, "could not back off", message_id=message.get("messageId"), error=repr(exc))
        return None
    return delay


class PoisonMessage(ValueError):
    """A message that will never parse: it goes back to SQS and on to the DLQ."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int
    etag: str
    version: str | None
    sequencer: str
    removed: bool = False
    reanalyse: bool = False  # a message from the app, not S3: analyse the current object again


def parse_message(body: str) -> list[S3Object] | None:
    """The objects an SQS message body announces; None for S3's test event."""
    try:
        event = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise PoisonMessage(f"body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise PoisonMessage("body is not a JSON object")
    if event.get("Event") == "s3:TestEvent":
        return None
    records = event.get("Records")
    if not isinstance(records, list):
        raise PoisonMessage("no Records list in the S3 event")
    objects = []
    for n, record in enumerate(records):
        try:
            name = str(record.get("eventName", ""))
            if not name.startswith(("ObjectCreated:", "ObjectRemoved:")):
                continue
            s3 = record["s3"]
            raw_key = s3["object"]["key"]
            objects.append(
                S3Object(
                    bucket=s3["bucket"]["name"],
                    # Keys arrive URL-encoded with '+' for spaces.
                    key=urllib.parse.unquote_plus(raw_key),
                    size=int(s3["object"].get("size") or 0),
                    etag=str(s3["object"].get("eTag") or ""),
                    version=s3["object"].get("versionId") or None,
                    sequencer=_sequencer(s3["object"].get("sequencer"), record.get("eventTime")),
                    removed=name.startswith("ObjectRemoved:"),
                    reanalyse=bool(record.get("reanalyse")),
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PoisonMessage(f"Records[{n}] is not an S3 event record: {exc!r}") from None
    return objects


def event_message(*, bucket: str, key: str, size: int, etag: str, event_time: str, reanalyse: bool = False) -> str:
    """An SQS body shaped like S3's ObjectCreated notification, for what the app asks of
    the labeler itself: re-analysis (``reanalyse``) and backfill of objects that never
    had a record. ``event_time`` is ISO 8601 with milliseconds and a Z."""
    record: dict[str, Any] = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": event_time,
        "eventName": "ObjectCreated:Reanalyse" if reanalyse else "ObjectCreated:Backfill",
        "s3": {"bucket": {"name": bucket}, "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": etag}},
    }
    if reanalyse:
        record["reanalyse"] = True
    return json.dumps({"Records": [record]})


def _sequencer(sequencer: Any, event_time: Any) -> str:
    """S3's sequencer, left-padded so that string order is event order (AWS's rule for
    comparing sequencers of one key). Emulators omit it: the event time stands in."""
    if sequencer:
        return str(sequencer).upper().zfill(SEQUENCER_WIDTH)
    if event_time:
        stamp = datetime.strptime(str(event_time).replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
        return format(int(stamp.timestamp() * 1_000_000), "X").zfill(SEQUENCER_WIDTH)
    return "0" * SEQUENCER_WIDTH


@dataclass(frozen=True)
class Stored:
    """What the table holds for a key, read once per object (one Query on its partition,
    strongly consistent): an erasure tombstone, and the S3 sequencer of its record."""

    erased: bool
    sequencer: str  # "" without a record


def stored(table: Any, key: str) -> Stored:
    items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"IMG#{key}"}, ConsistentRead=True,
        ProjectionExpression="sk, s3_sequencer",
    ).get("Items", [])
    by_sort_key = {item["sk"]: item for item in items}
    return Stored(erased=TOMBSTONE_SORT_KEY in by_sort_key,
                  sequencer=str(by_sort_key.get(SORT_KEY, {}).get("s3_sequencer", "")))


def reanalysis_sequencer(current: Stored, obj: S3Object) -> str:
    """A sequencer that sorts after the stored record's (so the new analysis replaces
    it) and after earlier re-analyses: the stored S3 sequencer + "-R" + this request's
    time. A real S3 event for the key (a new object version) still sorts after both."""
    base = (current.sequencer or "0" * SEQUENCER_WIDTH).split("-R")[0]
    return f"{base}-R{obj.sequencer}"


def put_record(table: Any, record: LabelRecord, sequencer: str) -> str:
    """Write unless the photo was erased or a record from the same or a later event is
    there, in one transaction (a tombstone written meanwhile wins): "written", "erased"
    or "stale"."""
    item = record.to_item()
    item["s3_sequencer"] = sequencer
    try:
        table.meta.client.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": table.name, "Key": {"pk": item["pk"], "sk": TOMBSTONE_SORT_KEY},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table.name, "Item": item,
                     "ConditionExpression": "attribute_not_exists(pk) OR s3_sequencer < :seq",
                     "ExpressionAttributeValues": {":seq": sequencer}}},
        ])
    except Exception as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
        if reasons[:1] == ["ConditionalCheckFailed"]:
            return "erased"
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            return "stale"
        raise
    return "written"


def erase(table: Any, obj: S3Object, reason: str) -> None:
    """Leave the tombstone and drop the analysis, in one transaction."""
    tombstone = tombstone_item(bucket=obj.bucket, key=obj.key, at=now_iso(), reason=reason)
    table.meta.client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table.name, "Item": tombstone}},
        {"Delete": {"TableName": table.name, "Key": {"pk": tombstone["pk"], "sk": SORT_KEY}}},
    ])


def process_object(obj: S3Object, rekognition: Any, table: Any) -> str:
    if not obj.key.startswith(UPLOAD_PREFIX):
        log(logging.WARNING, "ignored: outside the upload prefix", key=obj.key)
        return "ignored"
    if obj.removed:
        # Deleted outside the app (or by it: then the tombstone is there already). Every
        # version is gone or going; the photo must not come back.
        erase(table, obj, reason="S3 ObjectRemoved event")
        log(logging.INFO, "erased", key=obj.key)
        return "erased"
    lower = obj.key.lower()
    current = stored(table, obj.key)
    if current.erased:
        log(logging.INFO, "ignored: the photo was erased", key=obj.key)
        return "erased"
    if obj.reanalyse:
        obj = replace(obj, sequencer=reanalysis_sequencer(current, obj))
    elif current.sequencer >= obj.sequencer:
        # This event (or a later one for the key) is recorded: a duplicate costs one read
        # instead of three Rekognition calls.
        log(logging.INFO, "duplicate event, already recorded", key=obj.key, sequencer=obj.sequencer)
        return "duplicate"
    if lower.endswith(ANALYSABLE_SUFFIXES):
        image = ImageRef(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, version=obj.version)
        record = analyze(image, rekognition, options=AnalyzeOptions())
    elif lower.endswith(SKIPPED_SUFFIXES):
        stamp = now_iso()
        record = LabelRecord(
            bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_SKIPPED, engine="rekognition",
            error=AnalysisError(code="UnsupportedFormat", message="Rekognition reads JPEG and PNG only."),
            analyzed_at=stamp, updated_at=stamp,
        )
    else:
        # Anything else put under the prefix (a .txt, a .HEIC...) is on the record as
        # skipped, so operators see it rather than nothing.
        stamp = now_iso()
        record = LabelRecord(
            bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_SKIPPED, engine="rekognition",
            error=AnalysisError(code="NotAnImage", message="Only JPEG and PNG photos are analysed (WebP is skipped)."),
            analyzed_at=stamp, updated_at=stamp,
        )
    outcome = put_record(table, record, obj.sequencer)
    log(logging.INFO, {"written": "recorded", "stale": "newer record kept", "erased": "erased meanwhile, not recorded"}[outcome],
        key=obj.key, status=record.status, labels=len(record.labels), error=record.error.code if record.error else None)
    return {"written": record.status, "stale": "duplicate", "erased": "erased"}[outcome]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every S3 object of every SQS message; report failed messages only."""
    rekognition, table = clients()
    failures = []
    for message in event.get("Records", []):
        message_id = message.get("messageId", "")
        started = time.perf_counter()
        left_ms = context.get_remaining_time_in_millis() if context is not None else None
        if left_ms is not None and left_ms < IMAGE_WORST_CASE_SECONDS * 1000:
            log(logging.WARNING, "not enough time left; the message is retried", message_id=message_id, left_ms=left_ms)
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            objects = parse_message(message.get("body", ""))
            if objects is None:
                log(logging.INFO, "skipped s3:TestEvent", message_id=message_id)
                continue
            outcomes = [process_object(obj, rekognition, table) for obj in objects]
            log(logging.INFO, "message done", message_id=message_id, outcomes=outcomes,
                ms=round((time.perf_counter() - started) * 1000))
        except PoisonMessage as exc:
            log(logging.ERROR, "poison message", message_id=message_id, error=str(exc))
            failures.append({"itemIdentifier": message_id})
        except Exception as exc:
            # Throttling, server errors and anything unexpected: SQS redelivers after the
            # visibility timeout, and the DLQ keeps what never succeeds.
            transient = is_transient(exc)
            delay = back_off(message) if transient else None
            log(logging.WARNING if transient else logging.ERROR, "message failed, will be retried",
                exc_info=not transient, message_id=message_id, error=repr(exc), transient=transient, retry_in=delay)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
