"""The labeler Lambda handler, fed the real S3 -> SQS messages moto generates, writing to
a moto DynamoDB table; Rekognition is a fake whose responses botocore validates."""

from __future__ import annotations

import io
import json
import logging
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from infra import resources
from infra.functions.labeler import handler as labeler
from infra.functions.labeler.record import LabelRecord
from tests.functions.test_core import LABELS_RESPONSE, MODERATION_RESPONSE, TEXT_RESPONSE

BUCKET = "media-bucket-test"
TABLE = "labels-test"


class FakeRekognition:
    """Canned, service-model-valid responses; per-key errors on demand."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.errors: dict[str, str] = {}
        real = boto3.client("rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        stubber = Stubber(real)
        for op, response in (("detect_labels", LABELS_RESPONSE), ("detect_moderation_labels", MODERATION_RESPONSE),
                             ("detect_text", TEXT_RESPONSE)):
            stubber.add_response(op, response)  # validates the canned shapes

    def _call(self, op, response, Image, **kwargs):
        name = Image["S3Object"]["Name"]
        self.calls.append((op, Image))
        if name in self.errors:
            raise ClientError({"Error": {"Code": self.errors[name], "Message": f"{self.errors[name]} for test"}}, op)
        return response

    def detect_labels(self, **kwargs):
        return self._call("DetectLabels", LABELS_RESPONSE, **kwargs)

    def detect_moderation_labels(self, **kwargs):
        return self._call("DetectModerationLabels", MODERATION_RESPONSE, **kwargs)

    def detect_text(self, **kwargs):
        return self._call("DetectText", TEXT_RESPONSE, **kwargs)

    def images(self):
        return sorted({c[1]["S3Object"]["Name"] for c in self.calls})


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
        rekognition = FakeRekognition()
        monkeypatch.setattr(labeler, "REKOGNITION", rekognition)
        monkeypatch.setattr(labeler, "TABLE", table)

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

    result = labeler.handler(sqs_event(aws), None)

    assert result == {"batchItemFailures": []}
    assert aws.rekognition.images() == sorted(keys)
    for key in keys:
        record = LabelRecord.from_item(item(aws, key))
        assert record.key == key and record.status == "LABELED" and record.bucket == BUCKET
        assert record.labels[0].name == "Dog"


def test_s3_test_event_is_skipped(aws):
    # Configuring the notification made S3 (moto) send its s3:TestEvent.
    event = sqs_event(aws)
    assert any("s3:TestEvent" in r["body"] for r in event["Records"])

    assert labeler.handler(event, None) == {"batchItemFailures": []}
    assert aws.rekognition.calls == []


def test_duplicate_event_is_analysed_once(aws):
    upload(aws, "uploads/a.jpg")
    event = sqs_event(aws)
    objects = [r for r in event["Records"] if "ObjectCreated" in r["body"]]
    duplicated = {"Records": objects + [dict(objects[0], messageId="second-delivery")]}

    assert labeler.handler(duplicated, None) == {"batchItemFailures": []}

    assert [c[0] for c in aws.rekognition.calls].count("DetectLabels") == 1


def _event_body(key, sequencer):
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
                                    "eventTime": "2026-11-22T08:00:00.000Z", "s3": {"bucket": {"name": BUCKET}, "object": {
                                        "key": key, "size": 10, "eTag": "e", "sequencer": sequencer}}}]})


def test_out_of_order_event_never_replaces_a_newer_record(aws):
    labeler.handler(sqs_event(aws, bodies=[_event_body("uploads/b.jpg", "0055B988749DF4BC2D")]), None)
    newer = item(aws, "uploads/b.jpg")

    result = labeler.handler(sqs_event(aws, bodies=[_event_body("uploads/b.jpg", "55B988749DF4BC2C")]), None)  # older, shorter

    assert result == {"batchItemFailures": []}
    assert item(aws, "uploads/b.jpg") == newer
    assert len([c for c in aws.rekognition.calls if c[0] == "DetectLabels"]) == 1


def test_a_poison_message_alone_is_reported_failed(aws):
    upload(aws, "uploads/good-1.jpg")
    upload(aws, "uploads/good-2.jpg")
    event = sqs_event(aws)
    event["Records"].insert(1, dict(event["Records"][0], messageId="poison", body="{not json"))
    event["Records"].append(dict(event["Records"][0], messageId="not-s3", body=json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]})))

    result = labeler.handler(event, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}, {"itemIdentifier": "not-s3"}]}
    assert item(aws, "uploads/good-1.jpg") and item(aws, "uploads/good-2.jpg")


@pytest.mark.parametrize("code", ["InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException"])
def test_rekognition_rejection_is_recorded_as_failed_not_retried(aws, code):
    upload(aws, "uploads/bad.jpg")
    aws.rekognition.errors["uploads/bad.jpg"] = code

    assert labeler.handler(sqs_event(aws), None) == {"batchItemFailures": []}

    record = LabelRecord.from_item(item(aws, "uploads/bad.jpg"))
    assert record.status == "FAILED" and record.error.code == code


def test_throttled_image_is_retried_and_the_others_are_not(aws):
    upload(aws, "uploads/slow.jpg")
    upload(aws, "uploads/fine.jpg")
    aws.rekognition.errors["uploads/slow.jpg"] = "ThrottlingException"
    event = sqs_event(aws)
    slow_id = next(r["messageId"] for r in event["Records"] if "slow.jpg" in r["body"])

    result = labeler.handler(event, None)

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

    assert labeler.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": i} for i in object_ids]}


def test_webp_gets_a_skipped_record(aws):
    upload(aws, "uploads/pic.webp")

    labeler.handler(sqs_event(aws), None)

    record = LabelRecord.from_item(item(aws, "uploads/pic.webp"))
    assert record.status == "SKIPPED" and record.error.code == "UnsupportedFormat"
    assert aws.rekognition.calls == []


def test_logs_are_json_lines(aws):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(labeler.JsonFormatter())
    labeler.logger.addHandler(handler)
    try:
        upload(aws, "uploads/a.jpg")
        labeler.handler(sqs_event(aws), None)
    finally:
        labeler.logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(e["message"] == "recorded" and e["key"] == "uploads/a.jpg" and e["status"] == "LABELED" for e in lines)
    assert all({"level", "message"} <= set(e) for e in lines)


def test_a_throttled_burst_backs_off_and_nothing_reaches_the_dlq(aws, monkeypatch):
    """200 uploads while Rekognition throttles for 6 s, on a queue that moves a message
    to the DLQ at its 5th receive. Retried after the queue's 1 s visibility timeout (hot),
    each message would be received 6 times inside the throttled window; backed off (1, 2,
    4 s...) it comes back few enough times and is labelled (issue #11, finding 2)."""
    import time

    monkeypatch.setattr(labeler, "BACKOFF_BASE_SECONDS", 1)
    monkeypatch.setattr(labeler, "SQS", aws.sqs)
    monkeypatch.setattr(labeler, "_queue_urls", {})
    dlq = aws.sqs.create_queue(QueueName="burst-dlq")["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = aws.sqs.create_queue(QueueName="burst", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(resources.DLQ_MAX_RECEIVE_COUNT)})})["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    keys = [f"uploads/burst/{n}.jpg" for n in range(200)]
    for start in range(0, len(keys), 10):
        aws.sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(n), "MessageBody": _event_body(k, f"{n + 1:020X}")} for n, k in enumerate(keys[start:start + 10])])
    throttled_until = time.monotonic() + 6
    real_call = aws.rekognition._call

    def throttling(op, response, Image, **kwargs):
        if time.monotonic() < throttled_until:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, op)
        return real_call(op, response, Image, **kwargs)

    monkeypatch.setattr(aws.rekognition, "_call", throttling)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            attrs = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
            if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
                break
            time.sleep(0.2)
            continue
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m["Attributes"], "eventSourceARN": arn} for m in got]}
        failed = {f["itemIdentifier"] for f in labeler.handler(event, None)["batchItemFailures"]}
        for m in got:
            if m["MessageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    dead = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert dead["ApproximateNumberOfMessages"] == "0"
    assert all(item(aws, key)["status"] == "LABELED" for key in keys)



def test_a_message_is_started_only_with_time_for_its_worst_case(aws):
    """Every SDK call is bounded; a message is not started without the time its worst
    case needs, it is reported failed (retried) instead of being cut off by the timeout
    (issue #11, finding 7)."""
    upload(aws, "uploads/a.jpg")
    upload(aws, "uploads/b.jpg")
    event = sqs_event(aws)
    uploads = {"Records": [r for r in event["Records"] if "ObjectCreated" in r["body"]]}

    class Context:
        def __init__(self, left_ms):
            self.left_ms = left_ms

        def get_remaining_time_in_millis(self):
            return self.left_ms

    late = labeler.handler(uploads, Context(labeler.IMAGE_WORST_CASE_SECONDS * 1000 - 1))
    assert len(late["batchItemFailures"]) == 2 and aws.rekognition.calls == []

    in_time = labeler.handler(uploads, Context(resources.LABELER_TIMEOUT_SECONDS * 1000))
    assert in_time == {"batchItemFailures": []}
    assert labeler.IMAGE_WORST_CASE_SECONDS < resources.LABELER_TIMEOUT_SECONDS


def test_images_in_any_letter_case_are_analysed_and_other_files_are_on_the_record_as_skipped(aws):
    """Objects put straight into the bucket: upper-case extensions were never notified
    (suffix filters are case-sensitive) and non-images left no trace (issue #11, finding 6)."""
    for key in ("uploads/direct/Chelsea.JPG", "uploads/direct/Scan.PNG", "uploads/direct/notes.txt"):
        upload(aws, key)

    assert labeler.handler(sqs_event(aws), None) == {"batchItemFailures": []}

    assert aws.rekognition.images() == ["uploads/direct/Chelsea.JPG", "uploads/direct/Scan.PNG"]
    assert item(aws, "uploads/direct/Chelsea.JPG")["status"] == "LABELED"
    skipped = LabelRecord.from_item(item(aws, "uploads/direct/notes.txt"))
    assert skipped.status == "SKIPPED" and skipped.error.code == "NotAnImage"

