"""Lambda handler: S3 ObjectCreated events, delivered through SQS, to LabelRecords in
DynamoDB; ObjectRemoved events to tombstones (erasure).

The Powertools shell (logs, metrics, the partial-batch protocol, back-off) around one
``process_object`` per S3 object: events.py reads the messages, core.py analyses,
table.py writes the record (or the tombstone) with its conditions. Needs the Lambda runtime's boto3 and
the dependencies layer: Powertools (logs, metrics, batch, event classes) and Pillow (for
analysis renditions).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import table as labels_table
from .core import RENDITION_HELPS, AnalyzeOptions, ImageRef, analyze, error_code, is_transient
from .events import PoisonMessage, S3Object, parse_message, sequencer_after
from .record import STATUS_FAILED, STATUS_LABELED, STATUS_SKIPPED, AnalysisError, LabelRecord, now_iso
from .rendition import RenditionError, analysis_rendition, needs_rendition
from .video_jobs import is_video, video_message

UPLOAD_PREFIX = os.environ.get("UPLOAD_PREFIX", "uploads/")
# Photos the app accepts: JPEG and PNG go to Rekognition as stored when they are within
# its limits, and as an analysis rendition when not (WebP, AVIF and HEIC always). The bucket notifies
# every object under the prefix (S3 suffix filters are case-sensitive: "Chelsea.JPG" put
# straight into the bucket must be analysed too); suffixes are compared in lower case.
# Anything else gets a SKIPPED record.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".heic", ".heif")
METRICS_NAMESPACE = "MediaPipeline"  # infra/resources.py says the same (the stack sets it)


# Powertools: JSON logs with the request id, cold start and each message's id as the
# correlation id; CloudWatch metrics as EMF lines (no API calls); the SQS partial-batch
# protocol. From the dependencies layer in AWS (infra/constructs/labeler.py).
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "labeler"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE),
                  service=os.environ.get("POWERTOOLS_SERVICE_NAME", "labeler"))
# Every message failing (a throttled burst) is reported message by message like any
# partial failure, not raised as an invocation error: throttling has its own alarm and
# back-off, and the Errors alarm stays for the function's own faults.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)
# What the operator chose in the stack's parameters (features, MaxLabels, MinConfidence).
OPTIONS = AnalyzeOptions.from_env(os.environ)
# Images decoded for a rendition: refused above this (a decompression bomb, or more
# memory than the function has); the app accepts at most 50 MP.
RENDITION_MAX_PIXELS = int(os.environ.get("RENDITION_MAX_PIXELS", 100_000_000))
# An object larger than this is not read into memory for a rendition.
RENDITION_MAX_BYTES = int(os.environ.get("RENDITION_MAX_BYTES", 64 * 1024 * 1024))
# The outcome of each object, as a metric (count) and in the logs.
OUTCOME_METRICS = {STATUS_LABELED: "ImagesLabeled", STATUS_FAILED: "ImagesFailed", STATUS_SKIPPED: "ImagesSkipped",
                   "erased": "ObjectsErased", "duplicate": "DuplicateEvents", "ignored": "ObjectsIgnored",
                   "version-removed": "VersionsRemoved", "video-queued": "VideosQueued"}


# Module-level clients, created on first use (not at import) so tests and the local
# runner can put their own in place.
REKOGNITION: Any = None
TABLE: Any = None
SQS: Any = None
S3: Any = None
# A message that failed for a transient reason (Rekognition or DynamoDB throttling, a
# server error) is hidden for BASE x 2^(receives - 1) seconds, +-20 %, at most MAX,
# instead of coming back after the queue's visibility timeout: a throttled burst backs
# off rather than burning its receive count (5) and landing in the DLQ.
# Bounded work: one SDK call takes at most SDK_ATTEMPTS x (connect + read timeout) plus
# the standard mode's backoff (under 1 s + 2 s). An image is, in a row: the stored read
# (DynamoDB), Rekognition's calls (in parallel) as stored, and when it needs a rendition
# the object's read, the rendition (at most RENDITION_SECONDS) and Rekognition's calls
# again, then the write: at most IMAGE_WORST_CASE_SECONDS.
# A message is started only with that much of the function's time left; the rest of the
# batch is reported failed (and retried) instead of being cut off by the timeout.
SDK_ATTEMPTS = 3
SDK_CONNECT_TIMEOUT = 3
SDK_READ_TIMEOUT = 10
SDK_CALL_WORST_CASE_SECONDS = SDK_ATTEMPTS * (SDK_CONNECT_TIMEOUT + SDK_READ_TIMEOUT) + 3
RENDITION_SECONDS = 15  # make bench-rendition: 60 MP PNG 1.8 s on one core; ~0.6 vCPU at 1 GB
IMAGE_WORST_CASE_SECONDS = 5 * SDK_CALL_WORST_CASE_SECONDS + RENDITION_SECONDS
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900


def _config() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": SDK_ATTEMPTS},
                  connect_timeout=SDK_CONNECT_TIMEOUT, read_timeout=SDK_READ_TIMEOUT)


def clients() -> tuple[Any, Any]:
    global REKOGNITION, TABLE
    if REKOGNITION is None or TABLE is None:
        import boto3

        if REKOGNITION is None:
            REKOGNITION = boto3.client("rekognition", config=_config())
        if TABLE is None:
            TABLE = boto3.resource("dynamodb", config=_config()).Table(os.environ["LABELS_TABLE_NAME"])
    return REKOGNITION, TABLE


def sqs_client() -> Any:
    global SQS
    if SQS is None:
        import boto3

        SQS = boto3.client("sqs")
    return SQS


def s3_client() -> Any:
    global S3
    if S3 is None:
        import boto3

        S3 = boto3.client("s3", config=_config())
    return S3


def back_off(message: SQSRecord) -> int | None:
    """Hide a transiently failed message for longer each time it comes back; the delay
    set, or None if it could not be set (the queue's own timeout then applies)."""
    receives = int(message.attributes.approximate_receive_count or 1)
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, receives - 1))
    return hide_for(message, max(1, int(delay * random.uniform(0.8, 1.2))))


NOT_STARTED_RETRY_SECONDS = 5


def retry_soon(message: SQSRecord) -> int | None:
    """Make a message that was not started visible again in a few seconds."""
    return hide_for(message, NOT_STARTED_RETRY_SECONDS)


def hide_for(message: SQSRecord, seconds: int) -> int | None:
    """Set when a failed message comes back; ``seconds``, or None if it could not be set
    (the failure is still reported and the queue's own visibility timeout applies)."""
    try:
        sqs_client().change_message_visibility(QueueUrl=message.queue_url, ReceiptHandle=message.receipt_handle,
                                               VisibilityTimeout=seconds)
    except Exception as exc:
        logger.warning("could not set when the message comes back", extra={"error": repr(exc), "seconds": seconds})
        return None
    return seconds


class NoTimeLeft(Exception):
    """Not enough of the invocation left for this message's worst case: retried."""


def read_object(obj: S3Object) -> bytes:
    """The object's bytes (the version the event names), at most RENDITION_MAX_BYTES."""
    request = {"Bucket": obj.bucket, "Key": obj.key, **({"VersionId": obj.version} if obj.version else {})}
    response = s3_client().get_object(**request)
    if int(response.get("ContentLength") or 0) > RENDITION_MAX_BYTES:
        response["Body"].close()
        raise RenditionError("ObjectTooLarge", f"{response['ContentLength']} bytes is over {RENDITION_MAX_BYTES}")
    return response["Body"].read()


def object_remains(obj: S3Object) -> bool:
    """Whether the object still has a current version (HeadObject of the key, no version).
    With s3:ListBucket a missing key answers 404 (without it, 403: then it counts as
    remaining, so a permission gap never erases a photo)."""
    try:
        s3_client().head_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error_code(exc) in ("404", "NoSuchKey", "NotFound") or status == 404:
            return False
        if is_transient(exc) or status != 403:
            raise
        logger.warning("cannot tell whether the object remains (403): kept", extra={"key": obj.key})
    return True


def analyse_object(obj: S3Object, rekognition: Any) -> LabelRecord:
    """Rekognition reads the object itself when it can; otherwise (too big, too wide,
    not JPEG/PNG) it gets an analysis rendition as Bytes, as the local worker does."""
    image = ImageRef(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, version=obj.version)
    as_stored = None
    if not needs_rendition(obj.key, obj.size):
        as_stored = analyze(image, rekognition, options=OPTIONS)
        # Over 10,000 px a side, or a mislabelled format: only Rekognition's answer says.
        if as_stored.error is None or as_stored.error.code not in RENDITION_HELPS:
            return as_stored
    started = time.perf_counter()
    try:
        data = analysis_rendition(read_object(obj), max_pixels=RENDITION_MAX_PIXELS)
    except RenditionError as exc:
        if as_stored is not None and as_stored.error is not None:  # Rekognition's reason first
            return replace(as_stored, error=AnalysisError(
                code=as_stored.error.code, message=f"{as_stored.error.message} (no rendition either: {exc})"[:500]))
        stamp = now_iso()
        return LabelRecord(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_FAILED,
                           engine="rekognition", error=AnalysisError(code=exc.code, message=str(exc)[:500]),
                           analyzed_at=stamp, updated_at=stamp)
    except Exception as exc:
        if is_transient(exc) or error_code(exc) is None:
            raise
        stamp = now_iso()  # NoSuchKey, AccessDenied...: a fact about the object, on the record
        return LabelRecord(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_FAILED,
                           engine="rekognition", error=AnalysisError(code=error_code(exc) or "", message=str(exc)[:500]),
                           analyzed_at=stamp, updated_at=stamp)
    metrics.add_metric(name="RenditionsMade", unit=MetricUnit.Count, value=1)
    logger.info("analysing a rendition", extra={"key": obj.key, "bytes": len(data),
                                                 "ms": round((time.perf_counter() - started) * 1000)})
    return analyze(replace(image, data=data), rekognition, options=OPTIONS)


def process_object(obj: S3Object, rekognition: Any, table: Any) -> str:
    if not obj.key.startswith(UPLOAD_PREFIX):
        logger.warning("ignored: outside the upload prefix", extra={"key": obj.key})
        return "ignored"
    if obj.removed and obj.one_version and object_remains(obj):
        # One version deleted (an operator's clean-up, a noncurrent version expiring):
        # the object is still there, and so is the photo.
        logger.info("a version was removed; the object remains", extra={"key": obj.key, "version": obj.version})
        return "version-removed"
    if obj.removed:
        # Deleted outside the app (or by it: then the tombstone is there already). Every
        # version is gone or going; the photo must not come back.
        labels_table.erase(table, bucket=obj.bucket, key=obj.key, reason="S3 ObjectRemoved event")
        logger.info("erased", extra={"key": obj.key})
        return "erased"
    erased, stored_sequencer = labels_table.stored_state(table, obj.key)
    if erased:
        logger.info("ignored: the photo was erased", extra={"key": obj.key})
        return "erased"
    if obj.reanalyse:
        obj = replace(obj, sequencer=sequencer_after(stored_sequencer, obj))
    if stored_sequencer >= obj.sequencer:
        # This event (or a later one for the key) is recorded: a duplicate costs one read
        # instead of three Rekognition calls. A re-analysis request delivered twice has
        # the same sequencer the second time (the stored one's base + its own time).
        logger.info("duplicate event, already recorded", extra={"key": obj.key, "sequencer": obj.sequencer})
        return "duplicate"
    if is_video(obj.key) and os.environ.get("VIDEO_QUEUE_URL"):
        # Rekognition Video's jobs start from their own queue (video.py): they may wait
        # for the concurrent-jobs quota far longer than a photo's message may. A backfill's
        # videos wait on another, started only while no live upload's video waits.
        backfill_queue = os.environ.get("VIDEO_BACKFILL_QUEUE_URL")
        if obj.backfill and not backfill_queue:
            obj = replace(obj, backfill=False)  # on the live queue it must not wait for itself
        queue = backfill_queue if obj.backfill else os.environ["VIDEO_QUEUE_URL"]
        sqs_client().send_message(QueueUrl=queue, MessageBody=video_message(obj))
        logger.info("video queued for Rekognition Video", extra={"key": obj.key, "backfill": obj.backfill})
        return "video-queued"
    if obj.key.lower().endswith(IMAGE_SUFFIXES):
        record = analyse_object(obj, rekognition)
    elif is_video(obj.key):
        stamp = now_iso()
        record = LabelRecord(
            bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_SKIPPED, engine="rekognition",
            error=AnalysisError(code="VideoAnalysisOff", message="Video analysis is not deployed in this stack: "
                                "the video plays, but is not analysed."), analyzed_at=stamp, updated_at=stamp)
    else:
        # Anything else put under the prefix (a .txt, a .HEIC...) is on the record as
        # skipped, so operators see it rather than nothing.
        stamp = now_iso()
        record = LabelRecord(
            bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_SKIPPED, engine="rekognition",
            error=AnalysisError(code="NotAnImage", message="Only photos (JPEG, PNG, WebP, AVIF, HEIC) and videos "
                                "(MP4, MOV, WebM) are analysed."),
            analyzed_at=stamp, updated_at=stamp,
        )
    outcome = labels_table.put_record(table, record, obj.sequencer)
    logger.info({"written": "recorded", "stale": "newer record kept", "erased": "erased meanwhile, not recorded"}[outcome],
                extra={"key": obj.key, "status": record.status, "labels": len(record.labels),
                       "error": record.error.code if record.error else None})
    return {"written": record.status, "stale": "duplicate", "erased": "erased"}[outcome]


def record_handler(record: SQSRecord, lambda_context: Any = None) -> list[str]:
    """One SQS message: every S3 object it announces. Raising reports the message as
    a batch item failure (Powertools' BatchProcessor)."""
    logger.set_correlation_id(record.message_id)
    left_ms = lambda_context.get_remaining_time_in_millis() if lambda_context is not None else None
    if left_ms is not None and left_ms < IMAGE_WORST_CASE_SECONDS * 1000:
        # Back on the queue in seconds, not after its 24-minute visibility timeout: it
        # was never started, only this invocation ran short.
        retry_in = retry_soon(record)
        logger.warning("not enough time left; the message is retried", extra={"left_ms": left_ms, "retry_in": retry_in})
        raise NoTimeLeft(f"{left_ms} ms left, {IMAGE_WORST_CASE_SECONDS} s needed")
    started = time.perf_counter()
    rekognition, table = clients()
    try:
        objects = parse_message(record.body)
        if objects is None:
            logger.info("skipped s3:TestEvent")
            return []
        outcomes = [process_object(obj, rekognition, table) for obj in objects]
    except PoisonMessage as exc:
        logger.error("poison message", extra={"error": str(exc)})
        raise
    except Exception as exc:
        # Throttling, server errors and anything unexpected: SQS redelivers (later each
        # time for transient errors) and the DLQ keeps what never succeeds.
        transient = is_transient(exc)
        delay = back_off(record) if transient else None
        (logger.warning if transient else logger.exception)(
            "message failed, will be retried", extra={"error": repr(exc), "transient": transient, "retry_in": delay})
        raise
    for outcome in outcomes:
        metrics.add_metric(name=OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    logger.info("message done", extra={"outcomes": outcomes, "ms": round((time.perf_counter() - started) * 1000)})
    return outcomes


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every S3 object of every SQS message; report failed messages only."""
    if not event.get("Records"):
        return {"batchItemFailures": []}
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(event["Records"]))
    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    # Failed messages are not Lambda errors (raise_on_entire_batch_failure=False): counted
    # here, for the alarm that sees a pipeline whose messages keep failing.
    metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=len(result.get("batchItemFailures", [])))
    return result
