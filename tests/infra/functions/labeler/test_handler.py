"""The labeler Lambda handler, fed the real S3 -> SQS messages moto generates, writing to
a moto DynamoDB table; Rekognition is a fake whose responses botocore validates."""

from __future__ import annotations

import io
import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from infra.functions.labeler.table import record_of
from infra import resources
from infra.local_aws import LambdaContext
from infra.functions.labeler import handler as labeler
from tests.responses import LABELS_RESPONSE, MODERATION_RESPONSE, TEXT_RESPONSE

BUCKET = "media-bucket-test"
TABLE = "labels-test"


class FakeRekognition:
    """Canned, service-model-valid responses; per-key errors on demand. It holds images
    to Rekognition's documented limits (15 MB from S3, 5 MB as Bytes, JPEG or PNG, at
    most 10,000 px a side), reading S3Objects from the (moto) bucket."""

    S3_LIMIT = 15 * 1024 * 1024
    BYTES_LIMIT = 5 * 1024 * 1024

    def __init__(self, s3):
        self.s3 = s3
        self.calls: list[tuple[str, dict]] = []
        self.errors: dict[str, str] = {}
        real = boto3.client("rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        stubber = Stubber(real)
        for op, response in (("detect_labels", LABELS_RESPONSE), ("detect_moderation_labels", MODERATION_RESPONSE),
                             ("detect_text", TEXT_RESPONSE)):
            stubber.add_response(op, response)  # validates the canned shapes

    def _reject(self, op, code):
        raise ClientError({"Error": {"Code": code, "Message": f"{code} for test"}}, op)

    def _call(self, op, response, Image, **kwargs):
        self.calls.append((op, Image))
        if "S3Object" in Image:
            name = Image["S3Object"]["Name"]
            if name in self.errors:
                self._reject(op, self.errors[name])
            try:
                data, limit = self.s3.get_object(Bucket=Image["S3Object"]["Bucket"], Key=name)["Body"].read(), self.S3_LIMIT
            except self.s3.exceptions.NoSuchKey:
                return response  # events some tests make up, with no object behind them
        else:
            data, limit = Image["Bytes"], self.BYTES_LIMIT
        if len(data) > limit:
            self._reject(op, "ImageTooLargeException")
        if not data.startswith((b"\xff\xd8", b"\x89PNG")):
            self._reject(op, "InvalidImageFormatException")
        try:
            with PILImage.open(io.BytesIO(data)) as img:
                if max(img.size) > 10_000:
                    self._reject(op, "ImageTooLargeException")
        except UnidentifiedImageError:
            pass  # the placeholder bytes most tests upload: only their magic is checked
        return response

    def detect_labels(self, **kwargs):
        return self._call("DetectLabels", LABELS_RESPONSE, **kwargs)

    def detect_moderation_labels(self, **kwargs):
        return self._call("DetectModerationLabels", MODERATION_RESPONSE, **kwargs)

    def detect_text(self, **kwargs):
        return self._call("DetectText", TEXT_RESPONSE, **kwargs)

    def images(self):
        return sorted({c[1]["S3Object"]["Name"] for c in self.calls if "S3Object" in c[1]})

    def bytes_sent(self):
        return [c[1]["Bytes"] for c in self.calls if "Bytes" in c[1]]


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LABELS_TABLE_NAME", TABLE)
    with mock_aws():
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        queue = sqs.create_queue(QueueName="labeler")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [
                {"Name": "prefix", "Value": resources.NOTIFIED_PREFIX}]}}}]})
        table = boto3.resource("dynamodb").create_table(**resources.table_definition(TABLE))
        rekognition = FakeRekognition(s3)
        monkeypatch.setattr(labeler, "REKOGNITION", rekognition)
        monkeypatch.setattr(labeler, "TABLE", table)
        monkeypatch.setattr(labeler, "S3", s3)  # module-wide clients: this test's, not a cached one
        monkeypatch.setattr(labeler, "SQS", sqs)

        class Env:
            pass

        env = Env()
        env.s3, env.sqs, env.queue, env.queue_arn, env.table, env.rekognition = s3, sqs, queue, arn, table, rekognition
        yield env


def sqs_event(env, *, bodies=None):
    """The SQS -> Lambda event for what is on the queue (or for the given bodies)."""
    if bodies is None:
        messages = []
        while True:
            got = env.sqs.receive_message(QueueUrl=env.queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
            if not got:
                break
            messages += got
    else:
        messages = [{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": b, "MD5OfBody": "", "Attributes": {}} for b in bodies]
    return {"Records": [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": m.get("Attributes", {}),
         "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
         "eventSourceARN": env.queue_arn, "awsRegion": "us-east-1"}
        for m in messages
    ]}


def item(env, key):
    return env.table.get_item(Key={"pk": f"IMG#{key}", "sk": "ANALYSIS"}).get("Item")


def upload(env, key, body=b"\xff\xd8 jpeg bytes"):
    env.s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_real_s3_events_with_encoded_keys_are_decoded_and_recorded(aws):
    keys = ["uploads/2026/11/my holiday photo.jpg", "uploads/2026/11/café ☕ + croissant.png", "uploads/2026/11/plain.jpeg"]
    for key in keys:
        upload(aws, key)

    result = labeler.handler(sqs_event(aws), LambdaContext())

    assert result == {"batchItemFailures": []}
    assert aws.rekognition.images() == sorted(keys)
    for key in keys:
        record = record_of(item(aws, key))
        assert record.key == key and record.status == "LABELED" and record.bucket == BUCKET
        assert record.labels[0].name == "Dog"


def test_s3_test_event_is_skipped(aws):
    # Configuring the notification made S3 (moto) send its s3:TestEvent.
    event = sqs_event(aws)
    assert any("s3:TestEvent" in r["body"] for r in event["Records"])

    assert labeler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert aws.rekognition.calls == []


def test_duplicate_event_is_analysed_once(aws):
    upload(aws, "uploads/a.jpg")
    event = sqs_event(aws)
    objects = [r for r in event["Records"] if "ObjectCreated" in r["body"]]
    duplicated = {"Records": objects + [dict(objects[0], messageId="second-delivery")]}

    assert labeler.handler(duplicated, LambdaContext()) == {"batchItemFailures": []}

    assert [c[0] for c in aws.rekognition.calls].count("DetectLabels") == 1


def _event_body(key, sequencer):
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
                                    "eventTime": "2026-11-22T08:00:00.000Z", "s3": {"bucket": {"name": BUCKET}, "object": {
                                        "key": key, "size": 10, "eTag": "e", "sequencer": sequencer}}}]})


def _removal_body(key, name, version=None, sequencer="00FF"):
    obj = {"key": key, "sequencer": sequencer, **({"versionId": version} if version else {})}
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
                                    "eventTime": "2026-11-22T09:00:00.000Z",
                                    "s3": {"bucket": {"name": BUCKET}, "object": obj}}]})


def two_versions(aws, key):
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    old = aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8 old")["VersionId"]
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8 new")
    labeler.handler(sqs_event(aws), LambdaContext())
    assert item(aws, key)["status"] == "LABELED"
    return old


@pytest.mark.parametrize("event_name", ["ObjectRemoved:Delete", "LifecycleExpiration:Delete"])
def test_removing_a_noncurrent_version_is_not_an_erasure(aws, monkeypatch, event_name):
    """An operator deleting an old version, or the 30-day rule expiring one: the object
    and its photo stay."""
    monkeypatch.setattr(labeler, "S3", aws.s3)
    key = "uploads/kept.jpg"
    old = two_versions(aws, key)
    aws.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=old)

    result = labeler.handler(sqs_event(aws, bodies=[_removal_body(key, event_name, old)]), LambdaContext())

    assert result == {"batchItemFailures": []}
    assert item(aws, key)["status"] == "LABELED"
    assert "Item" not in aws.table.get_item(Key={"pk": f"IMG#{key}", "sk": "ERASED"})


@pytest.mark.parametrize("event_name", ["ObjectRemoved:DeleteMarkerCreated", "LifecycleExpiration:DeleteMarkerCreated",
                                        "ObjectRemoved:Delete"])
def test_removing_the_object_itself_is_an_erasure_whichever_way(aws, monkeypatch, event_name):
    """A delete marker (by hand or by a lifecycle rule), or the last version deleted."""
    monkeypatch.setattr(labeler, "S3", aws.s3)
    key = "uploads/gone.jpg"
    old = two_versions(aws, key)
    if event_name == "ObjectRemoved:Delete":
        for version in aws.s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]:
            aws.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    else:
        aws.s3.delete_object(Bucket=BUCKET, Key=key)

    labeler.handler(sqs_event(aws, bodies=[_removal_body(key, event_name, old)]), LambdaContext())

    assert item(aws, key) is None
    assert aws.table.get_item(Key={"pk": f"IMG#{key}", "sk": "ERASED"})["Item"]["key"] == key


def test_a_reanalysis_request_delivered_twice_is_paid_for_once(aws):
    """SQS delivers at least once: the second copy of a re-analysis message costs one
    read, not three more Rekognition calls; a later request is analysed again."""
    from infra.functions.labeler.events import event_message

    upload(aws, "uploads/again.jpg")
    labeler.handler(sqs_event(aws), LambdaContext())
    first = dict(bucket=BUCKET, key="uploads/again.jpg", size=10, etag="e", reanalyse=True)
    request = event_message(**first, event_time="2026-11-23T08:00:00.000Z")
    aws.rekognition.calls.clear()

    labeler.handler(sqs_event(aws, bodies=[request]), LambdaContext())
    labeler.handler(sqs_event(aws, bodies=[request]), LambdaContext())
    assert len(aws.rekognition.calls) == 3

    labeler.handler(sqs_event(aws, bodies=[event_message(**first, event_time="2026-11-24T08:00:00.000Z")]), LambdaContext())
    assert len(aws.rekognition.calls) == 6


def test_out_of_order_event_never_replaces_a_newer_record(aws):
    labeler.handler(sqs_event(aws, bodies=[_event_body("uploads/b.jpg", "0055B988749DF4BC2D")]), LambdaContext())
    newer = item(aws, "uploads/b.jpg")

    result = labeler.handler(sqs_event(aws, bodies=[_event_body("uploads/b.jpg", "55B988749DF4BC2C")]), LambdaContext())  # older, shorter

    assert result == {"batchItemFailures": []}
    assert item(aws, "uploads/b.jpg") == newer
    assert len([c for c in aws.rekognition.calls if c[0] == "DetectLabels"]) == 1


def test_a_poison_message_alone_is_reported_failed(aws):
    upload(aws, "uploads/good-1.jpg")
    upload(aws, "uploads/good-2.jpg")
    event = sqs_event(aws)
    event["Records"].insert(1, dict(event["Records"][0], messageId="poison", body="{not json"))
    event["Records"].append(dict(event["Records"][0], messageId="not-s3", body=json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]})))

    result = labeler.handler(event, LambdaContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}, {"itemIdentifier": "not-s3"}]}
    assert item(aws, "uploads/good-1.jpg") and item(aws, "uploads/good-2.jpg")


@pytest.mark.parametrize("code", ["InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException"])
def test_rekognition_rejection_is_recorded_as_failed_not_retried(aws, code):
    upload(aws, "uploads/bad.jpg")
    aws.rekognition.errors["uploads/bad.jpg"] = code

    assert labeler.handler(sqs_event(aws), LambdaContext()) == {"batchItemFailures": []}

    record = record_of(item(aws, "uploads/bad.jpg"))
    assert record.status == "FAILED" and record.error.code == code


def test_throttled_image_is_retried_and_the_others_are_not(aws):
    upload(aws, "uploads/slow.jpg")
    upload(aws, "uploads/fine.jpg")
    aws.rekognition.errors["uploads/slow.jpg"] = "ThrottlingException"
    event = sqs_event(aws)
    slow_id = next(r["messageId"] for r in event["Records"] if "slow.jpg" in r["body"])

    result = labeler.handler(event, LambdaContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": slow_id}]}
    assert item(aws, "uploads/slow.jpg") is None
    assert item(aws, "uploads/fine.jpg")["status"] == "LABELED"


def test_dynamodb_throttling_reports_the_message_for_retry(aws, monkeypatch):
    upload(aws, "uploads/a.jpg")

    class ThrottledClient:
        def transact_write_items(self, **kwargs):
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "Throttled"},
                               "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}]}, "TransactWriteItems")

    class ThrottledTable:
        name = TABLE

        class meta:
            client = ThrottledClient()

        def query(self, **kwargs):
            return {"Items": []}

    monkeypatch.setattr(labeler, "TABLE", ThrottledTable())
    event = sqs_event(aws)
    object_ids = [r["messageId"] for r in event["Records"] if "ObjectCreated" in r["body"]]

    assert labeler.handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": i} for i in object_ids]}


@pytest.fixture
def logs():
    """The labeler's JSON log lines (Powertools writes to the stream it was made with)."""
    stream = io.StringIO()
    handler = labeler.logger.registered_handler
    previous = handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        handler.setStream(previous)


def emitted_metrics(capsys) -> dict[str, float]:
    """Sums of the CloudWatch metrics (EMF lines) the handler printed."""
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == labeler.METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(blob[metric["Name"]])
    return totals


def test_logs_are_json_with_the_request_cold_start_and_message_as_correlation_id(aws, logs):
    upload(aws, "uploads/a.jpg")
    event = sqs_event(aws)
    message_id = next(r["messageId"] for r in event["Records"] if "a.jpg" in r["body"])

    labeler.handler(event, LambdaContext())

    lines = logs()
    recorded = next(e for e in lines if e["message"] == "recorded")
    assert recorded["key"] == "uploads/a.jpg" and recorded["status"] == "LABELED"
    assert recorded["correlation_id"] == message_id and recorded["service"] == "labeler"
    assert {"cold_start", "function_request_id", "level", "timestamp"} <= set(recorded)


def test_outcomes_are_metrics_and_failed_images_are_counted(aws, capsys):
    """The FAILED-rate alarm reads ImagesFailed and ImagesLabeled (issue #11, finding 7)."""
    for key in ("uploads/ok-1.jpg", "uploads/ok-2.jpg", "uploads/broken.jpg", "uploads/notes.txt"):
        upload(aws, key)
    aws.rekognition.errors["uploads/broken.jpg"] = "InvalidS3ObjectException"
    capsys.readouterr()

    assert labeler.handler(sqs_event(aws), LambdaContext()) == {"batchItemFailures": []}

    totals = emitted_metrics(capsys)
    assert (totals["ImagesLabeled"], totals["ImagesFailed"], totals["ImagesSkipped"]) == (2, 1, 1)
    assert (totals["MessagesReceived"], totals["MessagesFailed"]) == (5, 0)  # with S3's s3:TestEvent


def test_failed_messages_are_counted_though_they_are_no_lambda_error(aws, capsys):
    """A batch item failure is not an invocation error: only this metric sees it."""
    upload(aws, "uploads/ok.jpg")
    upload(aws, "uploads/throttled.jpg")
    aws.rekognition.errors["uploads/throttled.jpg"] = "ThrottlingException"
    capsys.readouterr()

    assert len(labeler.handler(sqs_event(aws), LambdaContext())["batchItemFailures"]) == 1

    totals = emitted_metrics(capsys)
    assert (totals["MessagesReceived"], totals["MessagesFailed"]) == (3, 1)  # with S3's s3:TestEvent


def test_every_record_failing_is_reported_per_message_not_raised(aws):
    upload(aws, "uploads/a.jpg")
    upload(aws, "uploads/b.jpg")
    event = {"Records": [r for r in sqs_event(aws)["Records"] if "ObjectCreated" in r["body"]]}
    aws.rekognition.errors.update({"uploads/a.jpg": "ThrottlingException", "uploads/b.jpg": "ThrottlingException"})

    result = labeler.handler(event, LambdaContext())

    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(r["messageId"] for r in event["Records"])


def encoded(img, fmt, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def assert_rekognition_took(data: bytes, *, max_side: int = 4096):
    assert data[:2] == b"\xff\xd8" and len(data) <= 5 * 1024 * 1024
    with PILImage.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and max(img.size) <= max_side and not img.getexif()


def test_a_webp_is_analysed_through_a_rendition(aws):
    """Rekognition reads JPEG and PNG only: WebP uploads were SKIPPED in AWS, so never
    moderated nor public (issue #11, finding 4)."""
    upload(aws, "uploads/pic.webp", encoded(PILImage.new("RGB", (640, 480), (200, 40, 40)), "WEBP"))

    labeler.handler(sqs_event(aws), LambdaContext())

    record = record_of(item(aws, "uploads/pic.webp"))
    assert record.status == "LABELED" and record.labels[0].name == "Dog"
    assert aws.rekognition.images() == []  # never asked to read the WebP itself
    sent = aws.rekognition.bytes_sent()
    assert len(sent) == 3
    assert_rekognition_took(sent[0])


@pytest.mark.parametrize("key", ["uploads/IMG_0001.HEIC", "uploads/pic.avif"])
def test_a_phone_photo_is_analysed_through_a_rendition(aws, key):
    """HEIC (through pi-heif, in the layer) and AVIF: Rekognition reads neither."""
    from tests.samples import heic

    img = PILImage.new("RGB", (640, 480), (200, 40, 40))
    upload(aws, key, heic(img) if key.endswith(".HEIC") else encoded(img, "AVIF"))

    labeler.handler(sqs_event(aws), LambdaContext())

    assert record_of(item(aws, key)).status == "LABELED"
    assert aws.rekognition.images() == []
    assert_rekognition_took(aws.rekognition.bytes_sent()[0])


def test_a_wide_60_megapixel_png_is_analysed_through_a_rendition(aws):
    """12,000 x 5,000 px: over Rekognition's 10,000 px a side, which only its answer
    tells; the labeler then sends a 4,096 px JPEG."""
    img = PILImage.linear_gradient("L").resize((12_000, 5_000)).convert("RGB")
    upload(aws, "uploads/panorama.PNG", encoded(img, "PNG", compress_level=1))

    labeler.handler(sqs_event(aws), LambdaContext())

    record = record_of(item(aws, "uploads/panorama.PNG"))
    assert record.status == "LABELED"
    assert aws.rekognition.images() == ["uploads/panorama.PNG"]  # tried as stored first
    sent = aws.rekognition.bytes_sent()
    assert len(sent) == 3
    assert_rekognition_took(sent[0])
    with PILImage.open(io.BytesIO(sent[0])) as rendition:
        assert rendition.size == (4096, 1707)


def test_a_jpeg_over_15_mb_is_analysed_through_a_rendition_under_5_mb(aws):
    import numpy as np

    noise = np.random.default_rng(7).integers(0, 256, (2600, 3400, 3), dtype=np.uint8)
    data = encoded(PILImage.fromarray(noise), "JPEG", quality=100)
    assert len(data) > 15 * 1024 * 1024
    upload(aws, "uploads/huge.jpg", data)

    labeler.handler(sqs_event(aws), LambdaContext())

    assert record_of(item(aws, "uploads/huge.jpg")).status == "LABELED"
    assert aws.rekognition.images() == []  # known too big from the event's size
    assert_rekognition_took(aws.rekognition.bytes_sent()[0])


@pytest.mark.parametrize(("body", "limit", "code"), [
    (b"RIFF\x00\x00\x00\x00WEBPnot really", None, "UnreadableImage"),
    (None, 10_000, "TooManyPixels"),
    ("bomb", None, "TooManyPixels"),  # 400 MP announced in a few hundred bytes: Pillow's own limit
])
def test_an_image_that_cannot_be_rendered_is_failed_with_the_reason(aws, monkeypatch, body, limit, code):
    if limit:
        monkeypatch.setattr(labeler, "RENDITION_MAX_PIXELS", limit)
    if body == "bomb":
        from tests.photos.test_decompression_bombs import bomb_png

        body = bomb_png()
    upload(aws, "uploads/bad.webp", body or encoded(PILImage.new("RGB", (200, 100)), "WEBP"))

    assert labeler.handler(sqs_event(aws), LambdaContext()) == {"batchItemFailures": []}

    record = record_of(item(aws, "uploads/bad.webp"))
    assert record.status == "FAILED" and record.error.code == code
    assert aws.rekognition.calls == []


@pytest.mark.parametrize("failure", [
    ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                 "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"),
    ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error."},
                 "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject"),
])
def test_a_transient_s3_failure_reading_for_a_rendition_is_retried_not_failed(aws, monkeypatch, failure):
    """S3's own throttle and server codes during the rendition's read: the message is
    retried later and the photo is labelled then, never left FAILED."""
    monkeypatch.setattr(labeler, "SQS", aws.sqs)
    upload(aws, "uploads/pic.webp", encoded(PILImage.new("RGB", (640, 480), (200, 40, 40)), "WEBP"))
    event = sqs_event(aws)
    real_get = aws.s3.get_object
    monkeypatch.setattr(labeler, "S3", aws.s3)

    def failing(**kwargs):
        raise failure

    monkeypatch.setattr(aws.s3, "get_object", failing)
    assert len(labeler.handler(event, LambdaContext())["batchItemFailures"]) == 1
    assert item(aws, "uploads/pic.webp") is None

    monkeypatch.setattr(aws.s3, "get_object", real_get)
    assert labeler.handler(event, LambdaContext())["batchItemFailures"] == []
    assert record_of(item(aws, "uploads/pic.webp")).status == "LABELED"


def test_switched_off_features_are_not_called(aws, monkeypatch):
    """The stack's parameters: no DetectModerationLabels, no DetectText, no image
    properties, MaxLabels 10 and MinConfidence 70."""
    from infra.functions.labeler.core import AnalyzeOptions

    env = {"DETECT_MODERATION": "false", "DETECT_TEXT": "false", "IMAGE_PROPERTIES": "false", "MAX_LABELS": "10",
           "MIN_LABEL_CONFIDENCE": "70"}
    monkeypatch.setattr(labeler, "OPTIONS", AnalyzeOptions.from_env(env))
    upload(aws, "uploads/a.jpg")

    labeler.handler(sqs_event(aws), LambdaContext())

    assert [op for op, _ in aws.rekognition.calls] == ["DetectLabels"]
    record = record_of(item(aws, "uploads/a.jpg"))
    assert record.status == "LABELED" and record.moderation_labels == () and record.text == ()


class SimulatedQueue:
    """An SQS queue with a redrive policy, on a simulated clock: a received message is
    hidden for the visibility timeout (or what ChangeMessageVisibility sets), and a
    message received maxReceiveCount times and not deleted moves to the dead-letter
    queue on its next receive, as SQS documents. Time moves only when the test moves it,
    so how busy the machine is changes nothing."""

    def __init__(self, *, visibility_timeout: float, max_receive_count: int):
        self.now = 0.0
        self.visibility_timeout, self.max_receive_count = visibility_timeout, max_receive_count
        self.messages: dict[str, dict] = {}
        self.dead: list[str] = []
        self.receipts: dict[str, str] = {}

    def send(self, body: str) -> None:
        self.messages[str(uuid.uuid4())] = {"body": body, "visible_at": self.now, "receives": 0}

    def receive(self, limit: int = 10) -> list[dict]:
        got = []
        for message_id, message in list(self.messages.items()):
            if len(got) == limit:
                break
            if message["visible_at"] > self.now:
                continue
            if message["receives"] >= self.max_receive_count:
                self.dead.append(self.messages.pop(message_id)["body"])
                continue
            message["receives"] += 1
            message["visible_at"] = self.now + self.visibility_timeout
            receipt = str(uuid.uuid4())
            self.receipts[receipt] = message_id
            got.append({"messageId": message_id, "receiptHandle": receipt, "body": message["body"],
                        "attributes": {"ApproximateReceiveCount": str(message["receives"])},
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:labeler"})
        return got

    def delete(self, receipt: str) -> None:
        self.messages.pop(self.receipts[receipt], None)

    def change_message_visibility(self, *, QueueUrl, ReceiptHandle, VisibilityTimeout):  # noqa: N803 (boto3's names)
        self.messages[self.receipts[ReceiptHandle]]["visible_at"] = self.now + VisibilityTimeout

    def wait_for_next(self) -> bool:
        """Move the clock to when the next hidden message shows again; False when empty."""
        if not self.messages:
            return False
        self.now = max(self.now, min(m["visible_at"] for m in self.messages.values()))
        return True


def drain(queue: SimulatedQueue) -> None:
    """What the SQS poller does: batches to the handler, succeeded messages deleted."""
    while queue.wait_for_next():
        while got := queue.receive():
            failed = {f["itemIdentifier"] for f in labeler.handler({"Records": got}, LambdaContext())["batchItemFailures"]}
            for message in got:
                if message["messageId"] not in failed:
                    queue.delete(message["receiptHandle"])


def throttled_burst(aws, monkeypatch, queue: SimulatedQueue, *, keys: list[str], throttled_for: float) -> None:
    monkeypatch.setattr(labeler, "SQS", queue)
    for n, key in enumerate(keys):
        queue.send(_event_body(key, f"{n + 1:020X}"))
    real_call = aws.rekognition._call

    def throttling(op, response, Image, **kwargs):
        if queue.now < throttled_for:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, op)
        return real_call(op, response, Image, **kwargs)

    monkeypatch.setattr(aws.rekognition, "_call", throttling)
    drain(queue)


def test_a_throttled_burst_backs_off_and_nothing_reaches_the_dlq(aws, monkeypatch):
    """100 uploads while Rekognition throttles for 5 minutes, on the stack's queue (its
    visibility timeout, a DLQ at the 5th receive). Backed off (30 s, 60 s, 120 s... +-20 %)
    a message comes back at most 4 times inside the window and is then labelled."""
    keys = [f"uploads/burst/{n}.jpg" for n in range(100)]
    queue = SimulatedQueue(visibility_timeout=resources.QUEUE_VISIBILITY_SECONDS,
                           max_receive_count=resources.DLQ_MAX_RECEIVE_COUNT)

    throttled_burst(aws, monkeypatch, queue, keys=keys, throttled_for=300)

    assert queue.dead == []
    assert all(item(aws, key)["status"] == "LABELED" for key in keys)


def test_without_back_off_the_same_burst_would_reach_the_dlq(aws, monkeypatch):
    """The control: messages retried every 30 s with no back-off spend their 5 receives
    inside the window and land in the DLQ, so the test above can fail."""
    keys = [f"uploads/burst/{n}.jpg" for n in range(20)]
    queue = SimulatedQueue(visibility_timeout=30, max_receive_count=resources.DLQ_MAX_RECEIVE_COUNT)
    monkeypatch.setattr(labeler, "back_off", lambda message: None)

    throttled_burst(aws, monkeypatch, queue, keys=keys, throttled_for=300)

    assert len(queue.dead) == len(keys)


def test_a_message_is_started_only_with_time_for_its_worst_case(aws):
    """Every SDK call is bounded; a message is not started without the time its worst
    case needs, it is reported failed (retried) instead of being cut off by the timeout
    (issue #11, finding 7)."""
    upload(aws, "uploads/a.jpg")
    upload(aws, "uploads/b.jpg")
    event = sqs_event(aws)
    uploads = {"Records": [r for r in event["Records"] if "ObjectCreated" in r["body"]]}

    late = labeler.handler(uploads, LambdaContext(labeler.IMAGE_WORST_CASE_SECONDS * 1000 - 1))
    assert len(late["batchItemFailures"]) == 2 and aws.rekognition.calls == []

    in_time = labeler.handler(uploads, LambdaContext(resources.LABELER_TIMEOUT_SECONDS * 1000))
    assert in_time == {"batchItemFailures": []}
    assert labeler.IMAGE_WORST_CASE_SECONDS < resources.LABELER_TIMEOUT_SECONDS


def test_images_in_any_letter_case_are_analysed_and_other_files_are_on_the_record_as_skipped(aws):
    """Objects put straight into the bucket: upper-case extensions were never notified
    (suffix filters are case-sensitive) and non-images left no trace (issue #11, finding 6)."""
    for key in ("uploads/direct/Chelsea.JPG", "uploads/direct/Scan.PNG", "uploads/direct/notes.txt"):
        upload(aws, key)

    assert labeler.handler(sqs_event(aws), LambdaContext()) == {"batchItemFailures": []}

    assert aws.rekognition.images() == ["uploads/direct/Chelsea.JPG", "uploads/direct/Scan.PNG"]
    assert item(aws, "uploads/direct/Chelsea.JPG")["status"] == "LABELED"
    skipped = record_of(item(aws, "uploads/direct/notes.txt"))
    assert skipped.status == "SKIPPED" and skipped.error.code == "NotAnImage"

