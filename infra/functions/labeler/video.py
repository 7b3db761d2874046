"""Videos in AWS (issue 22): the labeler hands each video to its own queue; a starter
starts its Rekognition Video jobs; a collector reads their completions and writes the
timeline beside the video and the summary record, as the local worker does.

- the labeler puts each video key on the video queue (video_jobs.video_message).
  Videos get their own queue because starting may wait for a long time: over the
  concurrent-jobs quota (20 by default) Start* raises LimitExceededException and AWS
  queues nothing, so a burst of uploads waits its turn there, its messages hidden for
  longer each time (up to 15 minutes) and sent to the DLQ only after infra/resources.py's VIDEO_MAX_RECEIVES
  tries (a day of waiting), where the photo queue gives up after 5. A backfill's videos
  wait on a queue of their own, started only while no live upload's video waits.
- ``start_handler``: each message's video, unless erased: Rekognition Video reads the
  video, or (HEVC, WebM: not H.264) the app's H.264 stream rendition (a record says the
  video waits for it after half an hour: a backfilled video then gets its row, and the
  app makes the stream); the jobs are started
  (video_jobs.start_jobs, idempotent by token), each noted in the table as it starts
  (table.open_jobs, table.note_job).
- ``collect_handler``: each completion notice (SNS -> SQS) sets its job's status
  (table.job_finished); the notice that finds every job finished pages the results
  (video_jobs.collect_timeline), writes the timeline object and the record through the
  same tombstone-checked transaction as a photo's (table.put_record), then forgets the
  jobs. An erasure while jobs run deletes the jobs item: the late notice writes nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import table as labels_table
from .core import error_code, is_transient
from .events import PoisonMessage, S3Object
from .handler import back_off, clients, logger, metrics, s3_client, sqs_client
from .record import STATUS_FAILED, STATUS_SKIPPED, WAITING_FOR_STREAM, AnalysisError, LabelRecord, now_iso
from .video_jobs import (
    APIS, GET_CALLS, TIMELINE_PREFIX, VIDEO_SUFFIXES, JobNotice, NotAJobNotice, collect_timeline, container_codec,
    failure_reason, job_tag, parse_notice, start_jobs, start_requests, stream_key, timeline_key, video_record,
)

FINAL = ("SUCCEEDED", "FAILED", "ERROR")


def _settings() -> dict[str, Any]:
    apis = tuple(a for a in os.environ.get("VIDEO_APIS", "labels,moderation,text").split(",") if a in APIS)
    return {"apis": apis, "topic_arn": os.environ["VIDEO_TOPIC_ARN"],
            "role_arn": os.environ["VIDEO_ROLE_ARN"], "min_confidence": float(os.environ.get("VIDEO_MIN_CONFIDENCE", 50))}


def start_video(obj: S3Object, rekognition: Any, table: Any) -> str:
    """Start a video's jobs, each noted as soon as it is started (so a completion that
    comes while a later Start* waits for the quota is kept); the outcome."""
    erased, stored_sequencer, waiting_for = labels_table.stored(table, obj.key)
    if erased:
        return "erased"
    if stored_sequencer and stored_sequencer >= obj.sequencer and waiting_for != obj.sequencer:
        return "duplicate"  # this event (or a later one) is recorded: a redelivered message
    if obj.backfill and (waiting := live_videos_waiting()):
        raise LiveVideosFirst(f"{waiting} live upload(s) wait for the jobs quota")
    settings = _settings()
    if not settings["apis"]:
        return _skipped(obj, table, "VideoAnalysisOff", "Video analysis is off in this stack (VideoApis=none): "
                        "the video plays, but is not analysed.")
    # The version the event names, or (the app's re-sends and re-analyses name none) the
    # current one: the jobs' tag and tokens are the same whoever asks for the same bytes.
    obj = replace(obj, version=obj.version or current_version(obj))
    analysed, version = analysed_object(obj)
    tag = job_tag(obj.key, obj.version)
    # A re-analysis asks for new jobs: tokens used in the last 7 days would return the old
    # jobs, whose completions AWS does not send again.
    requests = start_requests(bucket=obj.bucket, key=analysed, version=version, tag=tag,
                              again=obj.sequencer if obj.reanalyse else "", **settings)
    opened = labels_table.open_jobs(table, bucket=obj.bucket, key=obj.key, tag=tag, apis=list(requests),
                                    sequencer=obj.sequencer, etag=obj.etag, size=obj.size,
                                    alias=analysed if analysed != obj.key else None)
    if opened in ("erased", "superseded"):
        return "erased" if opened == "erased" else "duplicate"
    for api, request in requests.items():
        # Idempotent by its token: a job started on an earlier try comes back as it was.
        # LimitExceeded or throttling here is raised: the message is retried later, and
        # the jobs started so far stay noted.
        try:
            job_id = start_jobs(rekognition, {api: request})[api]
        except Exception as exc:
            if error_code(exc) not in REFUSALS:
                raise
            labels_table.drop_jobs(table, key=obj.key, tag=tag)
            status, code = REFUSALS[error_code(exc)]
            return _skipped(obj, table, code, f"Rekognition Video refused it: {exc}"[:500], status=status)
        if labels_table.note_job(table, key=obj.key, tag=tag, api=api, job_id=job_id) is None:
            return "erased"  # erased (or superseded) while starting: the jobs run for nothing
    logger.info("video jobs started", extra={"key": obj.key, "again": opened == "exists"})
    # Always asked, for a few Get* calls: a job that finished without its notice reaching
    # us (lost on the way, or a token already used, whose start sends none) is collected.
    return settle(obj.key, tag, rekognition, table) or ("video-started" if opened == "opened" else "duplicate")


def current_version(obj: S3Object) -> str | None:
    """The object's current version (None in an unversioned bucket)."""
    version = s3_client().head_object(Bucket=obj.bucket, Key=obj.key).get("VersionId")
    return None if version in (None, "null") else str(version)


class LiveVideosFirst(Exception):
    """A backfill's video waits while any live upload's video waits to start."""


def live_videos_waiting() -> int:
    """Messages on the live video queue: waiting, hidden (backing off over the quota, or
    being started now) or delayed."""
    url = os.environ.get("LIVE_VIDEO_QUEUE_URL")
    if not url:
        return 0
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs_client().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


class StreamNotReady(Exception):
    """The video is not H.264 and the app's worker has not made its H.264 stream yet."""

    def __init__(self, name: str, what: str):
        super().__init__(f"{name} is not made yet")
        self.what = what  # what the video is, in the owner's words ("HEVC", "WebM")


# The app makes the H.264 stream of every video it has a row for, minutes after upload. A
# video put into the bucket outside the app (a backfill) has no row until a record names
# it: once its message has waited this long, a SKIPPED record says why it waits (only
# where the key has no record at all: table.put_placeholder); the sync then creates its row
# and asks the app's worker for the stream, and the next try starts its jobs, whose record
# replaces the placeholder.
STREAM_WAIT_NOTE_SECONDS = 30 * 60


# Start* refusals no retry changes: on the record, with Rekognition's words.
REFUSALS = {"VideoTooLargeException": (STATUS_SKIPPED, "VideoTooLarge"),
            "InvalidS3ObjectException": (STATUS_FAILED, "InvalidS3Object"),
            "InvalidParameterException": (STATUS_FAILED, "InvalidParameter"),
            "AccessDeniedException": (STATUS_FAILED, "AccessDenied")}


def analysed_object(obj: S3Object) -> tuple[str, str | None]:
    """What Rekognition Video reads for a video: the video itself when its container
    names H.264 (or does not say: Rekognition then does), otherwise (an iPhone's HEVC,
    a WebM) the H.264 stream rendition the app's worker makes of every video, once it is
    there (StreamNotReady until then: the message waits on the queue)."""
    s3 = s3_client()
    if obj.key.lower().endswith(VIDEO_SUFFIXES):
        version = {"VersionId": obj.version} if obj.version else {}

        def read(start: int, length: int) -> bytes:
            got = s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes={start}-{start + length - 1}", **version)
            return got["Body"].read()
        size = obj.size or int(s3.head_object(Bucket=obj.bucket, Key=obj.key, **version)["ContentLength"])
        codec = container_codec(read, size)
        if codec in (None, "h264"):
            return obj.key, obj.version
        logger.info("not H.264: its stream rendition is analysed", extra={"key": obj.key, "codec": codec})
        what = codec.upper()
    else:
        what = obj.key.rsplit(".", 1)[-1].upper().replace("WEBM", "WebM")
    name = stream_key(obj.key)
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=name)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise StreamNotReady(name, what) from None
        raise
    return name, head.get("VersionId")


def settle(key: str, tag: str, rekognition: Any, table: Any) -> str | None:
    """Collect a video whose jobs have all finished though not every notice came; the
    outcome, or None while any still runs."""
    item = labels_table.running_jobs(table, key)
    if item is None or item.get("tag") != tag:
        return None
    if all_final(item):
        return collect_jobs(item, rekognition, table)
    outcome = None
    for api, job in item["jobs"].items():
        if job["status"] in FINAL:
            continue
        status = str(getattr(rekognition, GET_CALLS[api])(JobId=job["job_id"], MaxResults=1).get("JobStatus"))
        if status not in FINAL:
            return None
        outcome = finish(JobNotice(job_id=job["job_id"], status=status, api=api, tag=tag, bucket=item["bucket"],
                                   key=key), rekognition, table)
    return outcome


def all_final(item: dict[str, Any]) -> bool:
    """Every expected job started and finished."""
    jobs = item.get("jobs", {})
    return all(api in jobs and jobs[api]["status"] in FINAL for api in item.get("expected", jobs))


def _skipped(obj: S3Object, table: Any, code: str, message: str, *, status: str = STATUS_SKIPPED) -> str:
    """A SKIPPED (or FAILED) record whose reason the owner sees (unless the video was erased)."""
    stamp = now_iso()
    record = LabelRecord(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=status,
                         engine="rekognition", error=AnalysisError(code=code, message=message),
                         analyzed_at=stamp, updated_at=stamp)
    return {"written": status, "stale": "duplicate", "erased": "erased"}[
        labels_table.put_record(table, record, obj.sequencer)]


def note_waiting(obj: S3Object, table: Any, what: str) -> str:
    """The record of a video waiting for its H.264 stream (STREAM_WAIT_NOTE_SECONDS), where
    it has none yet: "written", "stale" (a record is there) or "erased"."""
    stamp = now_iso()
    record = LabelRecord(
        bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, status=STATUS_SKIPPED, engine="rekognition",
        error=AnalysisError(code=WAITING_FOR_STREAM, message=(
            f"Rekognition Video reads H.264 only and this video is {what}: it is analysed from its H.264 copy, "
            f"which is not made yet.")),
        analyzed_at=stamp, updated_at=stamp)
    return labels_table.put_placeholder(table, record, obj.sequencer)


def _waited_seconds(record: SQSRecord) -> float:
    """How long ago the message was sent to the video queue (0 if the event does not say)."""
    try:
        return time.time() - int(record.attributes.sent_timestamp) / 1000
    except (KeyError, TypeError, ValueError):
        return 0.0


def _video_of(body: str) -> S3Object:
    try:
        return S3Object(**json.loads(body)["video"])
    except (TypeError, ValueError, KeyError) as exc:
        raise PoisonMessage(f"not a video message: {exc!r}") from None


def start_record(record: SQSRecord, lambda_context: Any = None) -> str:
    logger.set_correlation_id(record.message_id)
    rekognition, table = clients()
    obj = _video_of(record.body)
    try:
        outcome = start_video(obj, rekognition, table)
    except Exception as exc:
        # Over the concurrent-jobs quota, throttled, the stream rendition not made yet:
        # back on the queue, later each time.
        transient = is_transient(exc) or isinstance(exc, (StreamNotReady, LiveVideosFirst))
        if (isinstance(exc, StreamNotReady) and not obj.reanalyse
                and _waited_seconds(record) >= STREAM_WAIT_NOTE_SECONDS):
            noted = note_waiting(obj, table, exc.what)
            logger.info("video waits for its H.264 stream", extra={"key": obj.key, "record": noted})
        delay = back_off(record) if transient else None
        (logger.warning if transient else logger.exception)(
            "video not started, will be retried", extra={"key": obj.key, "error": repr(exc), "retry_in": delay})
        if transient:
            metrics.add_metric(name="VideoStartsDeferred", unit=MetricUnit.Count, value=1)
        raise
    # (A video collected here, its completions lost, counted VideosLabeled/Failed already.)
    metrics.add_metric(name={"video-started": "VideoJobsStarted", STATUS_FAILED: "VideosFailed"}.get(
        outcome, "VideoStartsSkipped"), unit=MetricUnit.Count, value=1)
    return outcome


def collect_notice(body: str, rekognition: Any, table: Any) -> str:
    return finish(parse_notice(body), rekognition, table)


def finish(notice: JobNotice, rekognition: Any, table: Any) -> str:
    """One job finished: noted; the notice that finds every expected job finished collects."""
    if notice.status not in FINAL:
        return "ignored"
    if notice.key.startswith(TIMELINE_PREFIX):  # a stream rendition analysed for its video
        video_key = labels_table.video_of(table, notice.key)
        if video_key is None:
            return "stale"
        notice = replace(notice, key=video_key)
    item = labels_table.job_finished(table, key=notice.key, tag=notice.tag, api=notice.api, job_id=notice.job_id,
                                     status=notice.status)
    if item is None:
        logger.info("a completion for jobs no longer noted (collected, erased or superseded)", extra={"key": notice.key})
        return "stale"
    if not all_final(item):
        return "waiting"
    return collect_jobs(item, rekognition, table)


def collect_jobs(item: dict[str, Any], rekognition: Any, table: Any) -> str:
    """Page every finished job's results into the timeline object and the record (through
    the tombstone-checked transaction), then forget the jobs."""
    jobs, key = item["jobs"], labels_table.object_key(item)
    succeeded = {api: job["job_id"] for api, job in jobs.items() if job["status"] == "SUCCEEDED"}
    timeline = collect_timeline(rekognition, succeeded)
    failures = {api: failure_reason(rekognition, api, job["job_id"]) for api, job in jobs.items()
                if job["status"] != "SUCCEEDED"}
    record = video_record(timeline, bucket=item["bucket"], key=key, etag=str(item.get("etag", "")),
                          size=int(item.get("size", 0)), failures=failures)
    name = timeline_key(key)
    written = s3_client().put_object(Bucket=item["bucket"], Key=name, ContentType="application/json",
                                     Body=json.dumps(timeline, separators=(",", ":")).encode())
    outcome = labels_table.put_record(table, record, str(item["s3_sequencer"]))
    if outcome == "erased":  # erased while collecting: the timeline goes too, every byte of it
        version = {"VersionId": written["VersionId"]} if written.get("VersionId") else {}
        s3_client().delete_object(Bucket=item["bucket"], Key=name, **version)
    labels_table.drop_jobs(table, key=key, tag=item["tag"])
    metrics.add_metric(name="VideosLabeled" if record.status == "LABELED" else "VideosFailed", unit=MetricUnit.Count,
                       value=1)
    return {"written": record.status, "stale": "duplicate", "erased": "erased"}[outcome]


def collect_record(record: SQSRecord, lambda_context: Any = None) -> str:
    logger.set_correlation_id(record.message_id)
    rekognition, table = clients()
    metrics.add_metric(name="VideoNoticesReceived", unit=MetricUnit.Count, value=1)
    try:
        return collect_notice(record.body, rekognition, table)
    except NotAJobNotice as exc:
        logger.error("poison message", extra={"error": str(exc)})
        raise
    except Exception as exc:
        if is_transient(exc):
            back_off(record)
        logger.warning("completion not collected, will be retried", extra={"error": repr(exc)})
        raise


start_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)
collect_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def start_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=start_record, processor=start_processor, context=context)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def collect_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=collect_record, processor=collect_processor,
                                    context=context)
