"""Names and settings shared by the CDK stack, the offline AWS runner and Django.

The offline runner (`make run-aws-local`) creates its emulated resources from these, so
it runs with the settings the stack deploys."""

from __future__ import annotations

from infra.functions.labeler import table as _table

# The table's keys are part of the record format; repeated here with the rest of its shape.
SORT_KEY = _table.SORT_KEY
TOMBSTONE_ATTRIBUTES = tuple(sorted(_table.tombstone_item(bucket="b", key="k", at="t", reason="r")))
SYNC_INDEX = _table.SYNC_INDEX

UPLOAD_PREFIX = "uploads/"
# Direct uploads land here (presigned POST), outside the notified prefix: confirming one
# validates it and copies it under uploads/, so a replayed POST cannot overwrite a
# validated object. Unconfirmed ones expire after INCOMING_EXPIRATION_DAYS.
INCOMING_PREFIX = "incoming/"
INCOMING_EXPIRATION_DAYS = 1
# A video's multipart upload can resume for a day (photos/services/uploads.py
# MULTIPART_SECONDS); its parts are aborted the day after.
INCOMING_MULTIPART_DAYS = 2
THUMBNAIL_PREFIX = "thumbnails/"
# EXIF-free display renditions that everyone but a photo's owner is served (Django).
RENDITION_PREFIX = "renditions/"
# The bucket notifies every object under the upload prefix, whatever its suffix (S3's
# suffix filters are case-sensitive): the handler analyses JPEG/PNG/WebP in any letter
# case and records everything else as skipped.
NOTIFIED_PREFIX = UPLOAD_PREFIX

# Room for one image's worst case (every SDK call timing out and retrying, see the
# handler's IMAGE_WORST_CASE_SECONDS) plus the rest of a batch done normally.
LABELER_TIMEOUT_SECONDS = 240
# AWS: the queue's visibility timeout must be at least 6x the function timeout.
QUEUE_VISIBILITY_SECONDS = 6 * LABELER_TIMEOUT_SECONDS
# At least 5 (AWS's advice for SQS -> Lambda): a message the poller received while the
# function was at its concurrency limit, or whose analysis Rekognition throttled, must
# have room to be retried before it is moved to the dead-letter queue.
DLQ_MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_DAYS = 14
# The backfill's own queue (analyse_bucket): SQS's longest retention, so a backlog of
# millions is never dropped (expired messages vanish without reaching a DLQ), and its own
# event source mapping and concurrency, so live uploads never wait behind it.
BACKFILL_RETENTION_DAYS = 14
DEFAULT_BACKFILL_CONCURRENCY = 2  # the event source mapping's minimum
# Alarms: the Django sync reports SyncRuns every run (photos/pipelines/aws.py); none for
# this long means it stopped. Messages failing in every 5-minute period for this many
# periods means the pipeline is stuck failing, not just backing off a throttle.
SYNC_HEARTBEAT_MINUTES = 15
MESSAGES_FAILED_PERIODS = 3
# The labeler's CloudWatch metrics (Powertools, embedded metric format), dimension
# service=labeler; the FAILED-rate alarm reads ImagesFailed and ImagesLabeled.
METRICS_NAMESPACE = "MediaPipeline"
FAILED_RATE_ALARM_PERCENT = 20  # of the images analysed in 15 minutes...
FAILED_RATE_MIN_IMAGES = 10  # ...once at least this many were
QUEUE_AGE_ALARM_SECONDS = 900
SQS_BATCH_SIZE = 5
# Room to decode a photo for an analysis rendition: `make bench-rendition` peaks at
# 586 MB for a 60 MP RGBA PNG (the app accepts 50 MP); the handler refuses more than
# 100 MP before decoding.
LABELER_MEMORY_MB = 1024
# Each image costs one DetectLabels, one DetectModerationLabels and one DetectText call,
# made at the same time, each taking ~0.3-1 s: one running function sends each API at
# most ~1-3 requests a second. Rekognition's default quota is 50 TPS per API in large
# regions (5 in some), so 5 concurrent functions stay under it in every region. The
# stack parameter sets the event source mapping's MaximumConcurrency (the poller itself
# stops there; reserved concurrency would throttle batches it had already received).
DEFAULT_MAXIMUM_CONCURRENCY = 5

TABLE_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
TABLE_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
    {"AttributeName": "gsi1pk", "AttributeType": "S"},
    {"AttributeName": "updated_at", "AttributeType": "S"},
]
SYNC_INDEX_KEY_SCHEMA = [
    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
    {"AttributeName": "updated_at", "KeyType": "RANGE"},
]

CORS_ALLOWED_METHODS = ["GET", "PUT", "POST", "HEAD"]
NONCURRENT_VERSION_EXPIRATION_DAYS = 30
ACCESS_LOG_EXPIRATION_DAYS = 365


def table_definition(name: str) -> dict:
    """CreateTable arguments for a labels table shaped like the stack's (for emulators)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": TABLE_KEY_SCHEMA,
        "AttributeDefinitions": TABLE_ATTRIBUTES,
        "GlobalSecondaryIndexes": [
            {"IndexName": SYNC_INDEX, "KeySchema": SYNC_INDEX_KEY_SCHEMA, "Projection": {"ProjectionType": "ALL"}}
        ],
    }

# Video analysis (infra/constructs/video.py, labeler/video.py). Starting a video's jobs may
# wait on the concurrent-jobs quota (20 by default): its queue keeps messages 4 days and
# tries each up to VIDEO_MAX_RECEIVES times, hidden up to 15 minutes between tries (the
# labeler's back-off): about a day of waiting before the DLQ.
VIDEO_FUNCTION_TIMEOUT_SECONDS = 300  # the collector pages 10,000 labels in ~20 calls
VIDEO_MAX_RECEIVES = 100
VIDEO_QUEUE_RETENTION_DAYS = 4
VIDEO_QUEUE_AGE_ALARM_SECONDS = 6 * 3600  # a video not started for 6 hours
DEFAULT_VIDEO_START_CONCURRENCY = 2
# A backfill's videos (analyse_bucket) wait on their own queue, started only while no live
# upload's video waits: up to 400 tries, about 4 days at 15 minutes each. A message keeps
# its first enqueue time in the DLQ (14 days' retention), so it stays there ~10 days.
VIDEO_BACKFILL_MAX_RECEIVES = 400
VIDEO_BACKFILL_RETENTION_DAYS = 14
VIDEO_COLLECT_CONCURRENCY = 2

