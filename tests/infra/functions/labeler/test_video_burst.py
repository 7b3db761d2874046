"""A burst of 100 video uploads against Rekognition Video's concurrent-jobs quota (issue
22's target: 0 videos lost under LimitExceeded and throttling), simulated: the real
starter (video.start_record, with the labeler's back-off) and collector (collect_notice)
on a moto DynamoDB table, a fake Rekognition Video that refuses jobs over its quota
(LimitExceededException), throttles some calls, returns the same job for the same token
and finishes each job minutes later, and a queue with the video queue's redrive policy,
all on a simulated clock (no test waits for anything)."""

from __future__ import annotations

import heapq
import json
import random

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from moto import mock_aws

from infra import resources
from infra.functions.labeler import handler as labeler
from infra.functions.labeler import video
from infra.functions.labeler.events import S3Object
from infra.functions.labeler.table import record_of
from infra.functions.labeler.video_jobs import video_message

QUOTA = 20  # Rekognition Video's default concurrent stored-video jobs


class FakeRekognitionVideo:
    """Jobs over the quota are refused, 5 % of calls are throttled, a token starts one job."""

    def __init__(self, clock, rng):
        self.clock, self.rng = clock, rng
        self.running: dict[str, float] = {}  # job id -> when it finishes
        self.by_token: dict[str, str] = {}
        self.finished: list[tuple[float, str, str, str]] = []  # (at, job, api, key)
        self.jobs: dict[str, tuple[str, str, str]] = {}  # job -> (api, key, tag)
        self.refused = self.throttled = 0

    def _start(self, api, **request):
        if self.rng.random() < 0.05:
            self.throttled += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, api)
        token = request["ClientRequestToken"]
        if token in self.by_token:
            return {"JobId": self.by_token[token]}
        if len(self.running) >= QUOTA:
            self.refused += 1
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "too many jobs"}}, api)
        job = f"job-{len(self.by_token)}"
        self.by_token[token] = job
        self.running[job] = self.clock[0] + self.rng.uniform(120, 600)  # 2-10 minutes a job
        self.jobs[job] = (api, request["Video"]["S3Object"]["Name"], request["JobTag"])
        return {"JobId": job}

    def start_label_detection(self, **request):
        return self._start("StartLabelDetection", **request)

    def start_content_moderation(self, **request):
        return self._start("StartContentModeration", **request)

    def start_text_detection(self, **request):
        return self._start("StartTextDetection", **request)

    def due(self) -> list[str]:
        done = [job for job, at in self.running.items() if at <= self.clock[0]]
        for job in done:
            del self.running[job]
        return done

    def next_finish(self) -> float | None:
        return min(self.running.values(), default=None)

    def _result(self, JobId, items, **kwargs):
        if JobId in self.running:
            return {"JobStatus": "IN_PROGRESS"}
        meta = {"Codec": "h264", "DurationMillis": 60000, "Format": "QuickTime / MOV", "FrameRate": 30.0,
                "FrameHeight": 720, "FrameWidth": 1280}
        box = {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1}
        entries = {
            "Labels": [{"Timestamp": 0, "Label": {"Name": "Dog", "Confidence": 90.0, "Instances": [
                {"BoundingBox": box, "Confidence": 90.0}], "Parents": [], "Aliases": [], "Categories": []},
                        "StartTimestampMillis": 0, "EndTimestampMillis": 1000, "DurationMillis": 1000}],
            "ModerationLabels": [], "TextDetections": []}[items]
        return {"JobStatus": "SUCCEEDED", "VideoMetadata": meta, items: entries}

    def get_label_detection(self, **kwargs):
        return self._result(items="Labels", **kwargs)

    def get_content_moderation(self, **kwargs):
        return self._result(items="ModerationLabels", **kwargs)

    def get_text_detection(self, **kwargs):
        return self._result(items="TextDetections", **kwargs)


@pytest.fixture
def burst(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name, value in {"VIDEO_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:AmazonRekognition-video",
                        "VIDEO_ROLE_ARN": "arn:aws:iam::123456789012:role/publisher",
                        "VIDEO_APIS": "labels,moderation,text"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(**resources.table_definition("labels-burst"))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="media")
        monkeypatch.setattr(labeler, "TABLE", table)
        monkeypatch.setattr(labeler, "S3", s3)
        yield table, s3


def test_a_burst_of_100_videos_over_the_jobs_quota_loses_none(burst, monkeypatch):
    table, _ = burst
    rng = random.Random(22)
    clock = [0.0]
    rekognition = FakeRekognitionVideo(clock, rng)
    monkeypatch.setattr(labeler, "REKOGNITION", rekognition)
    monkeypatch.setattr(labeler.random, "uniform", rng.uniform)  # the back-off's jitter, seeded
    hidden: list[int] = []
    monkeypatch.setattr(labeler, "hide_for", lambda message, seconds: hidden.append(seconds) or seconds)

    # The video queue: (visible at, message number); receive counts as SQS keeps them.
    keys = [f"uploads/2026/12/{n:08x}-0000-4000-8000-000000000000.mp4" for n in range(100)]
    bodies = [video_message(S3Object(bucket="media", key=k, size=1, etag="e", version="v1",
                                      sequencer=f"{n:032X}")) for n, k in enumerate(keys)]
    queue = [(rng.uniform(0, 60), n) for n in range(len(bodies))]  # uploaded within a minute
    heapq.heapify(queue)
    receives = [0] * len(bodies)
    dead: list[int] = []
    notices = 0
    while queue or rekognition.running:
        finish = rekognition.next_finish()
        if queue and (finish is None or queue[0][0] <= finish):
            clock[0], n = heapq.heappop(queue)
            receives[n] += 1
            if receives[n] > resources.VIDEO_MAX_RECEIVES:  # the redrive policy: to the DLQ
                dead.append(n)
                continue
            record = SQSRecord({"messageId": str(n), "receiptHandle": "rh", "body": bodies[n],
                                "attributes": {"ApproximateReceiveCount": str(receives[n])},
                                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:videos"})
            hidden.clear()
            try:
                video.start_record(record)
            except ClientError:
                delay = hidden[-1] if hidden else 6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS
                heapq.heappush(queue, (clock[0] + delay, n))
        else:
            clock[0] = finish
            for job in rekognition.due():
                api, key, tag = rekognition.jobs[job]
                body = json.dumps({"JobId": job, "Status": "SUCCEEDED", "API": api, "JobTag": tag,
                                   "Video": {"S3ObjectName": key, "S3Bucket": "media"}})
                notices += 1
                while True:  # the completion queue redelivers a throttled collection
                    try:
                        video.collect_notice(body, rekognition, table)
                        break
                    except ClientError:
                        continue

    records = [table.get_item(Key={"pk": f"IMG#{k}", "sk": "ANALYSIS"}).get("Item") for k in keys]
    assert dead == []
    assert all(r is not None and record_of(r).status == "LABELED" for r in records)
    assert rekognition.refused > 0 and rekognition.throttled > 0  # the quota and throttling were hit
    assert notices == 3 * len(keys) and len(rekognition.by_token) == 3 * len(keys)  # one job per token
    assert max(receives) < resources.VIDEO_MAX_RECEIVES
    print(f"\n100 videos, quota {QUOTA} jobs: drained in {clock[0] / 3600:.1f} simulated hours; "
          f"{rekognition.refused} starts refused over the quota, {rekognition.throttled} throttled; "
          f"most receives of one message {max(receives)} of {resources.VIDEO_MAX_RECEIVES}")
