"""Rekognition Video's jobs (issue 22): started idempotently, their notices read, their
results paged into the local worker's timeline and one summary record. Rekognition is
botocore's Stubber, which checks every request and response against the service model
(moto does not mock video analysis)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from infra.functions.labeler.core import is_transient
from infra.functions.labeler.timeline import FrameAnalysis, VideoFacts, get_content_moderation, get_label_detection
from infra.functions.labeler.video_jobs import (
    APIS, NotAJobNotice, collect_timeline, job_tag, job_token, parse_notice, start_jobs, start_requests, video_record,
)
from infra.functions.labeler.record import Box, Instance, Label, LabelRecord, ModerationLabel

TOPIC = "arn:aws:sns:eu-west-1:123456789012:AmazonRekognition-mediaapp-video"
ROLE = "arn:aws:iam::123456789012:role/mediaapp-rekognition-publish"
KEY = "uploads/2026/12/0b7f7c1e-2f7a-4b8a-9d0e-1c2d3e4f5a6b.mp4"


@pytest.fixture
def rekognition():
    client = boto3.client("rekognition", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def requests_for(version="v1", apis=("labels", "moderation", "text")):
    return start_requests(bucket="media", key=KEY, version=version, apis=apis, topic_arn=TOPIC, role_arn=ROLE,
                          min_confidence=55)


def test_jobs_start_with_a_token_per_version_and_api(rekognition):
    client, stub = rekognition
    requests = requests_for()
    for n, (api, request) in enumerate(requests.items()):
        method = {"StartLabelDetection": "start_label_detection", "StartContentModeration": "start_content_moderation",
                  "StartTextDetection": "start_text_detection"}[api]
        stub.add_response(method, {"JobId": f"job-{n}"}, request)

    assert start_jobs(client, requests) == {"StartLabelDetection": "job-0", "StartContentModeration": "job-1",
                                            "StartTextDetection": "job-2"}
    tokens = {r["ClientRequestToken"] for r in requests.values()}
    assert len(tokens) == 3 and all(len(t) <= 64 and t.isalnum() for t in tokens)
    # The same version and API: the same token (a duplicate start gets the same job);
    # a new version of the object: new tokens.
    assert requests_for() == requests
    assert not tokens & {r["ClientRequestToken"] for r in requests_for(version="v2").values()}
    assert requests["StartLabelDetection"]["Video"]["S3Object"] == {"Bucket": "media", "Name": KEY, "Version": "v1"}
    assert job_tag(KEY, "v1") != job_tag(KEY, "v2")


def test_over_the_concurrent_jobs_quota_the_start_is_retried_later(rekognition):
    client, stub = rekognition
    requests = requests_for(apis=("labels", "moderation"))
    stub.add_response("start_label_detection", {"JobId": "job-0"}, requests["StartLabelDetection"])
    stub.add_client_error("start_content_moderation", "LimitExceededException", "Too many jobs", 400)

    with pytest.raises(ClientError) as raised:
        start_jobs(client, requests)

    assert is_transient(raised.value)  # the message goes back on the queue, with back-off
    # The retry: the job started before comes back with the same id (same token).
    stub.add_response("start_label_detection", {"JobId": "job-0"}, requests["StartLabelDetection"])
    stub.add_response("start_content_moderation", {"JobId": "job-1"}, requests["StartContentModeration"])
    assert start_jobs(client, requests)["StartLabelDetection"] == "job-0"


def test_a_notice_is_read_from_snss_envelope_or_raw():
    notice = {"JobId": "job-0", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": job_tag(KEY, "v1"),
              "Timestamp": 1765094400000, "Video": {"S3ObjectName": KEY, "S3Bucket": "media"}}
    envelope = {"Type": "Notification", "MessageId": "m", "TopicArn": TOPIC, "Message": json.dumps(notice)}

    for body in (json.dumps(envelope), json.dumps(notice)):
        parsed = parse_notice(body)
        assert (parsed.job_id, parsed.status, parsed.api, parsed.key, parsed.bucket) == (
            "job-0", "SUCCEEDED", "StartLabelDetection", KEY, "media")
    for bad in ("not json", "[]", json.dumps({"Type": "Notification", "Message": "{}"})):
        with pytest.raises(NotAJobNotice):
            parse_notice(bad)


FACTS = VideoFacts(codec="h264", format="MP4", duration_ms=9000, frame_rate=30.0, width=1280, height=720)


def frame(ms: int, *names: str, flagged: bool = False) -> FrameAnalysis:
    box = Box(left=0.1, top=0.2, width=0.3, height=0.4)
    return FrameAnalysis(ms, LabelRecord(
        bucket="media", key=KEY, status="LABELED", engine="rekognition",
        labels=tuple(Label(name=n, confidence=80.0 + ms / 1000, instances=(Instance(box=box, confidence=90.0),))
                     for n in names),
        moderation_labels=(ModerationLabel(name="Violence", confidence=70.0 + ms / 1000),) if flagged else ()))


def paged(stub, method: str, response: dict, items_key: str, *, request: dict, per_page: int):
    """The response cut into pages of ``per_page`` items, each expected with its NextToken."""
    items = response[items_key]
    chunks = [items[i:i + per_page] for i in range(0, len(items), per_page)] or [[]]
    for n, chunk in enumerate(chunks):
        page = {**response, items_key: chunk}
        if n + 1 < len(chunks):
            page["NextToken"] = f"{method}-{n + 1}"
        expected = {**request, **({"NextToken": f"{method}-{n}"} if n else {})}
        stub.add_response(method, page, expected)


def test_every_page_of_every_job_becomes_the_local_workers_timeline(rekognition):
    """Completion with 3 pages: the collector follows NextToken to the end, and the
    timeline and summary are what the local path makes of the same moments."""
    client, stub = rekognition
    frames = [frame(0, "Dog", "Grass"), frame(1000, "Dog"), frame(2000, "Dog", "Ball", flagged=True),
              frame(5000, "Cat", flagged=True)]
    segments = get_label_detection(frames, FACTS, interval_ms=1000, model_version="3.0")
    stamps = get_label_detection(frames, FACTS, interval_ms=1000, aggregate_by="TIMESTAMPS", model_version="3.0")
    moderation = get_content_moderation(frames, FACTS, interval_ms=1000, model_version="7.0")
    paged(stub, "get_label_detection", segments, "Labels", per_page=2,
          request={"JobId": "L", "MaxResults": 1000, "AggregateBy": "SEGMENTS"})
    paged(stub, "get_label_detection", stamps, "Labels", per_page=3,
          request={"JobId": "L", "MaxResults": 1000, "AggregateBy": "TIMESTAMPS"})
    paged(stub, "get_content_moderation", moderation, "ModerationLabels", per_page=1,
          request={"JobId": "M", "MaxResults": 1000, "AggregateBy": "SEGMENTS"})

    timeline = collect_timeline(client, {"StartLabelDetection": "L", "StartContentModeration": "M"})

    assert timeline["labels"]["Labels"] == segments["Labels"] and "NextToken" not in timeline["labels"]
    assert timeline["label_timestamps"]["Labels"] == stamps["Labels"]
    assert timeline["moderation"]["ModerationLabels"] == moderation["ModerationLabels"]
    assert timeline["frames"] == [0, 1000, 2000, 5000]
    record = video_record(timeline, bucket="media", key=KEY, etag="e", size=9, failures={})
    assert {lb.name: lb.confidence for lb in record.labels} == {"Dog": 82.0, "Grass": 80.0, "Ball": 82.0, "Cat": 85.0}
    assert [m.confidence for m in record.moderation_labels] == [75.0]
    assert record.model_versions == {"labels": "3.0", "moderation": "7.0"}


def test_a_failed_job_is_a_failed_record_with_its_reason():
    record = video_record({}, bucket="media", key=KEY, etag="e", size=9,
                          failures={"StartLabelDetection": "Unsupported codec: hevc"})
    assert record.status == "FAILED" and record.error.code == "VideoJobFailed"
    assert "Unsupported codec: hevc" in record.error.message


def test_every_api_is_named_by_its_start_call():
    assert set(APIS.values()) == {"StartLabelDetection", "StartContentModeration", "StartTextDetection"}
    assert job_token("b", KEY, None, "StartLabelDetection") != job_token("b", KEY, "", "StartTextDetection")


class PagedLabels:
    """GetLabelDetection over a long video: ``count`` labels, paged as Rekognition pages."""

    def __init__(self, count: int):
        self.count, self.calls = count, 0
        meta = {"Codec": "h264", "DurationMillis": 3_600_000, "Format": "QuickTime / MOV", "FrameRate": 30.0,
                "FrameHeight": 720, "FrameWidth": 1280}
        self.entries = [{"Timestamp": n * 100, "Label": {"Name": f"Thing {n % 400}", "Confidence": 60 + n % 40,
                                                        "Instances": [], "Parents": [], "Aliases": [], "Categories": []},
                         "StartTimestampMillis": n * 100, "EndTimestampMillis": n * 100 + 100, "DurationMillis": 100}
                        for n in range(count)]
        self.meta = meta

    def get_label_detection(self, *, JobId, MaxResults, AggregateBy, NextToken=None):
        self.calls += 1
        start = int(NextToken or 0)
        page = {"JobStatus": "SUCCEEDED", "VideoMetadata": self.meta, "Labels": self.entries[start:start + MaxResults],
                "LabelModelVersion": "3.0"}
        if start + MaxResults < self.count:
            page["NextToken"] = str(start + MaxResults)
        return page


def test_the_collector_pages_10000_labels_into_one_timeline_and_a_capped_record():
    """Issue 22's target: 10,000 labels are 10 pages per aggregation (20 calls); the
    timeline keeps them all, the record keeps what fits a DynamoDB item."""
    import time

    client = PagedLabels(10_000)
    started = time.perf_counter()

    timeline = collect_timeline(client, {"StartLabelDetection": "L"})
    record = video_record(timeline, bucket="media", key=KEY, etag="e", size=9, failures={})

    assert client.calls == 20 and len(timeline["labels"]["Labels"]) == 10_000
    assert len(timeline["label_timestamps"]["Labels"]) == 10_000
    assert 0 < len(record.labels) <= 400 and record.status == "LABELED"
    print(f"\n10,000 labels collected and summarised in {time.perf_counter() - started:.2f} s (no Rekognition latency)")
