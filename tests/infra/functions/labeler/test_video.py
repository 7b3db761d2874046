"""Videos in AWS (issue 22), under moto (S3, SQS, DynamoDB) with a stubbed Rekognition
(botocore's Stubber checks every request and response against the service model; moto
does not mock video analysis): the labeler queues a video, the starter starts its jobs
(idempotently; over the quota it waits, nothing lost), the collector pages every result
into the timeline and the record, a FAILED job is on the record, and an erasure while
jobs run leaves nothing behind."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra.functions.labeler import handler as labeler
from infra.functions.labeler import video
from infra.functions.labeler import table as labels
from infra.functions.labeler.record import Box, Instance, Label, LabelRecord, ModerationLabel
from infra.functions.labeler.events import event_message
from infra.functions.labeler.table import record_of
from infra.functions.labeler.timeline import FrameAnalysis, VideoFacts, get_content_moderation, get_label_detection
from infra.functions.labeler.video_jobs import job_tag, stream_key, timeline_key
from infra.local_aws import LambdaContext
from tests.infra.functions.labeler.test_handler import BUCKET, aws, item, sqs_event  # noqa: F401 (the fixture)
from tests.samples import video as sample_video

KEY = "uploads/2026/12/0b7f7c1e-2f7a-4b8a-9d0e-1c2d3e4f5a6b.mp4"
TOPIC = "arn:aws:sns:us-east-1:123456789012:AmazonRekognition-mediaapp-video"
ROLE = "arn:aws:iam::123456789012:role/mediaapp-rekognition-publish"
VERSIONS: dict[str, str | None] = {}  # each test's uploads: the version their jobs are tagged with
STARTS = {"StartLabelDetection": "start_label_detection", "StartContentModeration": "start_content_moderation",
          "StartTextDetection": "start_text_detection"}


@pytest.fixture
def videos(aws, monkeypatch):  # noqa: F811 (aws is the fixture)
    monkeypatch.setenv("VIDEO_TOPIC_ARN", TOPIC)
    monkeypatch.setenv("VIDEO_ROLE_ARN", ROLE)
    monkeypatch.setenv("VIDEO_APIS", "labels,moderation")
    monkeypatch.setenv("VIDEO_MIN_CONFIDENCE", "55")
    aws.video_queue = aws.sqs.create_queue(QueueName="videos")["QueueUrl"]
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # as deployed
    VERSIONS.clear()
    monkeypatch.setenv("VIDEO_QUEUE_URL", aws.video_queue)
    rekognition = boto3.client("rekognition", region_name="us-east-1")
    stub = Stubber(rekognition)
    stub.activate()
    monkeypatch.setattr(labeler, "REKOGNITION", rekognition)
    aws.stub = stub
    yield aws
    stub.assert_no_pending_responses()
    stub.deactivate()


def queued_videos(env) -> list[dict]:
    got = env.sqs.receive_message(QueueUrl=env.video_queue, MaxNumberOfMessages=10, AttributeNames=["All"])
    return got.get("Messages", [])


def video_event(env, messages) -> dict:
    return {"Records": [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
         "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:videos", "awsRegion": "us-east-1",
         "queue_url": env.video_queue} for m in messages]}


def expect_starts(env, job_ids=("L", "M"), *, error=None, running=True):
    """The starter's Start* calls (checked against the service model and the parameters
    every start must carry), then, unless ``running`` is False, its status check of the
    first job (still running)."""
    for api, job_id in zip(("StartLabelDetection", "StartContentModeration"), job_ids):
        if error and api == error[0]:
            env.stub.add_client_error(STARTS[api], error[1], "for test", 400)
            return
        version = {"Version": env.version} if getattr(env, "version", None) else {}
        env.stub.add_response(STARTS[api], {"JobId": job_id}, {
            "Video": {"S3Object": {"Bucket": BUCKET, "Name": KEY, **version}}, "ClientRequestToken": ANY,
            "JobTag": job_tag(KEY, getattr(env, "version", None)), "NotificationChannel": {"SNSTopicArn": TOPIC, "RoleArn": ROLE},
            "MinConfidence": 55.0})
    if running:
        env.stub.add_response("get_label_detection", {"JobStatus": "IN_PROGRESS"}, {"JobId": job_ids[0], "MaxResults": 1})


def uploaded_and_queued(env, key=KEY) -> list[dict]:
    put = env.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x00\x00\x00\x18ftypmp42 video bytes")
    env.version = VERSIONS[key] = put.get("VersionId")
    assert labeler.handler(sqs_event(env), LambdaContext()) == {"batchItemFailures": []}
    return queued_videos(env)


def notice(job_id: str, api: str, status: str = "SUCCEEDED", key: str = KEY, version=None, tag_key=None) -> str:
    body = {"JobId": job_id, "Status": status, "API": api, "JobTag": job_tag(tag_key or key, version or VERSIONS.get(tag_key or key)),
            "Timestamp": 1,
            "Video": {"S3ObjectName": key, "S3Bucket": BUCKET}}
    return json.dumps({"Type": "Notification", "MessageId": "n", "TopicArn": TOPIC, "Message": json.dumps(body)})


def collect(env, *bodies) -> dict:
    event = sqs_event(env, bodies=list(bodies))
    return video.collect_handler(event, LambdaContext())


FACTS = VideoFacts(codec="h264", format="MP4", duration_ms=9000, frame_rate=30.0, width=1280, height=720)


def frames():
    box = Box(left=0.1, top=0.2, width=0.3, height=0.4)

    def at(ms, *names, flagged=False):
        return FrameAnalysis(ms, LabelRecord(
            bucket=BUCKET, key=KEY, status="LABELED", engine="rekognition",
            labels=tuple(Label(name=n, confidence=90.0, instances=(Instance(box=box, confidence=90.0),)) for n in names),
            moderation_labels=(ModerationLabel(name="Violence", confidence=81.0),) if flagged else ()))
    return [at(0, "Dog", "Grass"), at(1000, "Dog"), at(2000, "Dog", "Ball", flagged=True), at(5000, "Cat")]


def expect_results(env, *, per_page=2):
    """Labels (by segments and by timestamps) and moderation, paged ``per_page`` at a time."""
    for method, response, items, extra in (
            ("get_label_detection", get_label_detection(frames(), FACTS, interval_ms=1000), "Labels",
             {"AggregateBy": "SEGMENTS"}),
            ("get_label_detection", get_label_detection(frames(), FACTS, interval_ms=1000, aggregate_by="TIMESTAMPS"),
             "Labels", {"AggregateBy": "TIMESTAMPS"}),
            ("get_content_moderation", get_content_moderation(frames(), FACTS, interval_ms=1000), "ModerationLabels",
             {"AggregateBy": "SEGMENTS"})):
        chunks = [response[items][i:i + per_page] for i in range(0, len(response[items]), per_page)]
        for n, chunk in enumerate(chunks):
            page = {**response, items: chunk, **({"NextToken": f"t{n + 1}"} if n + 1 < len(chunks) else {})}
            env.stub.add_response(method, page, {"JobId": {"get_content_moderation": "M"}.get(method, "L"),
                                                 "MaxResults": 1000, **extra, **({"NextToken": f"t{n}"} if n else {})})


def test_a_video_is_queued_started_collected_and_recorded(videos):
    messages = uploaded_and_queued(videos)
    assert len(messages) == 1 and json.loads(messages[0]["Body"])["video"]["key"] == KEY
    assert item(videos, KEY) is None  # no record yet: the jobs run

    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}
    jobs = labels.running_jobs(videos.table, KEY)
    assert {api: j["job_id"] for api, j in jobs["jobs"].items()} == {"StartLabelDetection": "L",
                                                                      "StartContentModeration": "M"}

    assert collect(videos, notice("L", "StartLabelDetection")) == {"batchItemFailures": []}
    assert item(videos, KEY) is None  # one of two jobs done: waiting
    expect_results(videos)  # three pages of segments, four of timestamps, one of moderation
    assert collect(videos, notice("M", "StartContentModeration")) == {"batchItemFailures": []}

    record = record_of(item(videos, KEY))
    assert record.status == "LABELED" and {lb.name for lb in record.labels} == {"Dog", "Grass", "Ball", "Cat"}
    assert [m.name for m in record.moderation_labels] == ["Violence"]
    timeline = json.loads(videos.s3.get_object(Bucket=BUCKET, Key=timeline_key(KEY))["Body"].read())
    assert timeline_key(KEY) == "renditions/0b7f7c1e-2f7a-4b8a-9d0e-1c2d3e4f5a6b.timeline.json"
    # The same timeline the local worker writes for the same moments (timeline.py).
    assert timeline["labels"]["Labels"] == get_label_detection(frames(), FACTS, interval_ms=1000)["Labels"]
    assert timeline["frames"] == [0, 1000, 2000, 5000]
    assert labels.running_jobs(videos.table, KEY) is None
    # A notice delivered twice: the jobs are forgotten, nothing is written again.
    assert collect(videos, notice("M", "StartContentModeration")) == {"batchItemFailures": []}


def test_a_duplicate_start_gets_the_same_jobs_and_keeps_their_progress(videos):
    messages = uploaded_and_queued(videos)
    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}
    collect(videos, notice("L", "StartLabelDetection"))

    expect_starts(videos, running=False)  # the same tokens: Rekognition answers with the same job ids
    videos.stub.add_response("get_content_moderation", {"JobStatus": "IN_PROGRESS"}, {"JobId": "M", "MaxResults": 1})
    assert video.start_video(video._video_of(messages[0]["Body"]), labeler.REKOGNITION, videos.table) == "duplicate"
    assert labels.running_jobs(videos.table, KEY)["jobs"]["StartLabelDetection"]["status"] == "SUCCEEDED"


def test_over_the_concurrent_jobs_quota_the_video_waits_on_its_queue(videos):
    messages = uploaded_and_queued(videos)
    expect_starts(videos, error=("StartContentModeration", "LimitExceededException"))

    result = video.start_handler(video_event(videos, messages), LambdaContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert item(videos, KEY) is None
    # The label job, started, is noted at once: were it to finish before the retry, its
    # completion (sent once) would be kept, not dropped for want of a note.
    noted = labels.running_jobs(videos.table, KEY)
    assert {api: j["job_id"] for api, j in noted["jobs"].items()} == {"StartLabelDetection": "L"}
    assert noted["expected"] == ["StartLabelDetection", "StartContentModeration"]
    # Still on its queue (hidden for the back-off), not in a DLQ: it is retried.
    attributes = videos.sqs.get_queue_attributes(QueueUrl=videos.video_queue, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1

    # The label job finishes meanwhile; the retry starts the other, and the video is
    # collected when that one finishes.
    assert collect(videos, notice("L", "StartLabelDetection")) == {"batchItemFailures": []}
    expect_starts(videos, running=False)
    videos.stub.add_response("get_content_moderation", {"JobStatus": "IN_PROGRESS"}, {"JobId": "M", "MaxResults": 1})
    assert video.start_video(video._video_of(messages[0]["Body"]), labeler.REKOGNITION, videos.table) == "duplicate"
    expect_results(videos)
    collect(videos, notice("M", "CONTENT_MODERATION"))  # the API reference's spelling of API
    assert record_of(item(videos, KEY)).status == "LABELED"


def test_a_failed_job_is_on_the_record_with_rekognitions_reason(videos, monkeypatch):
    monkeypatch.setenv("VIDEO_APIS", "labels")
    messages = uploaded_and_queued(videos)
    videos.stub.add_response("start_label_detection", {"JobId": "L"})
    videos.stub.add_response("get_label_detection", {"JobStatus": "IN_PROGRESS"}, {"JobId": "L", "MaxResults": 1})
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}
    videos.stub.add_response("get_label_detection", {"JobStatus": "FAILED", "StatusMessage": "Unsupported codec."},
                             {"JobId": "L", "MaxResults": 1})

    collect(videos, notice("L", "StartLabelDetection", status="FAILED"))

    record = record_of(item(videos, KEY))
    assert record.status == "FAILED" and record.error.code == "VideoJobFailed"
    assert "Unsupported codec." in record.error.message


def test_an_erasure_while_jobs_run_leaves_nothing_for_the_late_completion(videos):
    messages = uploaded_and_queued(videos)
    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}

    labels.erase(videos.table, bucket=BUCKET, key=KEY, reason="deleted in the app")
    assert collect(videos, notice("L", "StartLabelDetection"), notice("M", "StartContentModeration")) == {
        "batchItemFailures": []}

    assert item(videos, KEY) is None and labels.running_jobs(videos.table, KEY) is None
    assert "Contents" not in videos.s3.list_objects_v2(Bucket=BUCKET, Prefix="renditions/")


@pytest.mark.parametrize("container, suffix", [("hevc.mov", ".mov"), ("webm", ".webm")])
def test_a_video_rekognition_cannot_read_is_analysed_through_its_h264_stream(videos, container, suffix):
    """An iPhone's HEVC (told from its container's sample entry, read by ranged GETs, moov
    last) or a WebM: Rekognition Video reads H.264 only, so its jobs read the app's H.264
    stream rendition, once the worker has made it (until then the video waits on its
    queue); their notices name the rendition, and the record is the video's."""
    key = KEY.removesuffix(".mp4") + suffix
    put = videos.s3.put_object(Bucket=BUCKET, Key=key, Body=sample_video(container=container, seconds=1))
    VERSIONS[key] = put.get("VersionId")
    labeler.handler(sqs_event(videos), LambdaContext())
    messages = queued_videos(videos)

    result = video.start_handler(video_event(videos, messages), LambdaContext())  # no stream yet
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert item(videos, key) is None

    stream = stream_key(key)
    version = videos.s3.put_object(Bucket=BUCKET, Key=stream, Body=b"h264 stream").get("VersionId")
    for api, job_id in (("StartLabelDetection", "L"), ("StartContentModeration", "M")):
        videos.stub.add_response(STARTS[api], {"JobId": job_id}, {
            "Video": {"S3Object": {"Bucket": BUCKET, "Name": stream, **({"Version": version} if version else {})}},
            "ClientRequestToken": ANY, "JobTag": job_tag(key, VERSIONS[key]), "NotificationChannel": ANY,
            "MinConfidence": 55.0})
    videos.stub.add_response("get_label_detection", {"JobStatus": "IN_PROGRESS"}, {"JobId": "L", "MaxResults": 1})
    assert video.start_video(video._video_of(messages[0]["Body"]), labeler.REKOGNITION, videos.table) == "video-started"

    collect(videos, notice("L", "StartLabelDetection", key=stream, tag_key=key))
    expect_results(videos)
    collect(videos, notice("M", "StartContentModeration", key=stream, tag_key=key))
    record = record_of(item(videos, key))
    assert record.status == "LABELED" and record.key == key
    assert videos.s3.get_object(Bucket=BUCKET, Key=timeline_key(key))["ContentLength"] > 0


def test_a_backfilled_hevc_video_says_it_waits_for_its_stream_then_is_analysed(videos):
    """A video put into the bucket outside the app has no row, so no stream is made for it
    until a record names it. After STREAM_WAIT_NOTE_SECONDS its record says why it waits
    (once); the message keeps waiting; once the stream is there the analysis replaces it."""
    key = KEY.removesuffix(".mp4") + ".mov"
    put = videos.s3.put_object(Bucket=BUCKET, Key=key, Body=sample_video(container="hevc.mov", seconds=1))
    VERSIONS[key] = put.get("VersionId")
    labeler.handler(sqs_event(videos), LambdaContext())
    messages = queued_videos(videos)

    def start(waited_seconds):
        event = video_event(videos, messages)
        sent = int((time.time() - waited_seconds) * 1000)
        event["Records"][0]["attributes"] = {**event["Records"][0]["attributes"], "SentTimestamp": str(sent)}
        return video.start_handler(event, LambdaContext())

    failed = {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert start(video.STREAM_WAIT_NOTE_SECONDS - 60) == failed and item(videos, key) is None
    assert start(video.STREAM_WAIT_NOTE_SECONDS + 60) == failed
    waiting = item(videos, key)
    assert start(video.STREAM_WAIT_NOTE_SECONDS + 900) == failed and item(videos, key) == waiting  # written once
    record = record_of(waiting)
    assert (record.status, record.error.code) == ("SKIPPED", "WaitingForStream")
    assert record.error.message.startswith("Rekognition Video reads H.264 only and this video is HEVC")

    stream = videos.s3.put_object(Bucket=BUCKET, Key=stream_key(key), Body=b"h264 stream").get("VersionId")
    for api, job_id in (("StartLabelDetection", "L"), ("StartContentModeration", "M")):
        videos.stub.add_response(STARTS[api], {"JobId": job_id}, {
            "Video": {"S3Object": {"Bucket": BUCKET, "Name": stream_key(key), **({"Version": stream} if stream else {})}},
            "ClientRequestToken": ANY, "JobTag": job_tag(key, VERSIONS[key]), "NotificationChannel": ANY,
            "MinConfidence": 55.0})
    videos.stub.add_response("get_label_detection", {"JobStatus": "IN_PROGRESS"}, {"JobId": "L", "MaxResults": 1})
    assert start(7200) == {"batchItemFailures": []}
    collect(videos, notice("L", "StartLabelDetection", key=stream_key(key), tag_key=key))
    expect_results(videos)
    collect(videos, notice("M", "StartContentModeration", key=stream_key(key), tag_key=key))
    assert record_of(item(videos, key)).status == "LABELED"


def test_the_waiting_record_never_replaces_a_record_and_orders_later_events_after_its_own(videos):
    """Review findings: a re-analysis waiting for a stream writes no placeholder (it would
    hide the labels the video has); a placeholder is written only where there is no record;
    a re-analysis of a video whose record is the placeholder sorts after the event it waits
    for (so that event's message does not start the jobs a second time)."""
    from infra.functions.labeler.events import S3Object, sequencer_after

    seq = "0" * 31 + "A"
    obj = S3Object(bucket=BUCKET, key=KEY, size=1, etag="e", version=None, sequencer=seq)
    assert video.note_waiting(obj, videos.table, "HEVC") == "written"
    assert labels.stored_state(videos.table, KEY) == (False, seq) and labels.stored(videos.table, KEY)[2] == seq
    again = S3Object(bucket=BUCKET, key=KEY, size=1, etag="e", version=None, sequencer="0" * 31 + "B", reanalyse=True)
    assert sequencer_after(labels.stored_state(videos.table, KEY)[1], again) > seq

    other = "uploads/2026/12/labelled.mov"
    real = LabelRecord(bucket=BUCKET, key=other, status="LABELED", engine="rekognition",
                      analyzed_at="2026-12-07T12:00:00.000000Z", updated_at="2026-12-07T12:00:00.000000Z")
    assert labels.put_record(videos.table, real, "0" * 31 + "5") == "written"
    later = S3Object(bucket=BUCKET, key=other, size=1, etag="e", version=None, sequencer="0" * 31 + "5-R" + "0" * 31 + "9",
                     reanalyse=True)
    assert video.note_waiting(later, videos.table, "HEVC") == "stale"
    assert record_of(item(videos, other)).status == "LABELED"


def test_a_video_over_rekognitions_limits_is_skipped_saying_why(videos):
    messages = uploaded_and_queued(videos)
    videos.stub.add_client_error("start_label_detection", "VideoTooLargeException",
                                 "The file size or duration of the video is too large.", 400)

    assert video.start_video(video._video_of(messages[0]["Body"]), labeler.REKOGNITION, videos.table) == "SKIPPED"

    record = record_of(item(videos, KEY))
    assert record.error.code == "VideoTooLarge" and "too large" in record.error.message
    assert labels.running_jobs(videos.table, KEY) is None


def test_without_the_video_path_a_video_is_skipped_with_a_reason_not_called_a_bad_photo(aws, monkeypatch):  # noqa: F811
    monkeypatch.delenv("VIDEO_QUEUE_URL", raising=False)
    aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"video")

    labeler.handler(sqs_event(aws), LambdaContext())

    record = record_of(item(aws, KEY))
    assert record.status == "SKIPPED" and record.error.code == "VideoAnalysisOff"


def test_a_lost_completion_is_collected_when_the_sweep_asks_again(videos):
    """The label job's notice never came (lost between SNS and SQS): the app's sweep sends
    the video again; the starter finds its jobs noted, asks each running one for its
    status, and collects the video."""
    messages = uploaded_and_queued(videos)
    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}
    collect(videos, notice("M", "StartContentModeration"))  # only the moderation notice arrives

    # The sweep's re-send: an S3-event-shaped message from the app, naming no version.
    resend = sweep_resend(videos)
    expect_starts(videos, running=False)  # the current version: the same tag and tokens, the same jobs
    videos.stub.add_response("get_label_detection", {"JobStatus": "SUCCEEDED"}, {"JobId": "L", "MaxResults": 1})
    expect_results(videos)
    assert video.start_video(video._video_of(resend[0]["Body"]), labeler.REKOGNITION, videos.table) == "LABELED"

    assert record_of(item(videos, KEY)).status == "LABELED" and labels.running_jobs(videos.table, KEY) is None


def test_while_a_job_runs_the_sweeps_resend_changes_nothing(videos):
    messages = uploaded_and_queued(videos)
    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}

    resend = sweep_resend(videos)
    expect_starts(videos, running=False)
    videos.stub.add_response("get_label_detection", {"JobStatus": "IN_PROGRESS"}, {"JobId": "L", "MaxResults": 1})
    assert video.start_video(video._video_of(resend[0]["Body"]), labeler.REKOGNITION, videos.table) == "duplicate"
    assert item(videos, KEY) is None
    assert set(labels.running_jobs(videos.table, KEY)["jobs"]) == {"StartLabelDetection", "StartContentModeration"}


def sweep_resend(env) -> list[dict]:
    """What the app's sweep sends for a video with no record (events.event_message, no
    version), as the labeler forwards it to the video queue."""
    body = event_message(bucket=BUCKET, key=KEY, size=30, etag="e", event_time="2026-12-07T12:00:00.000Z")
    assert labeler.handler(sqs_event(env, bodies=[body]), LambdaContext()) == {"batchItemFailures": []}
    messages = queued_videos(env)
    assert json.loads(messages[0]["Body"])["video"]["version"] is None
    return messages


def test_a_backfills_videos_wait_on_their_own_lane_behind_live_uploads(videos, monkeypatch):
    """analyse_bucket's videos go to the backfill's video queue, and none starts while a
    live upload's video waits (on the live queue, hidden or not): a backlog of old videos
    never takes the concurrent-jobs quota from new uploads. The sweep's re-send of a lost
    live upload stays on the live queue."""
    backfill_queue = videos.sqs.create_queue(QueueName="video-backfill")["QueueUrl"]
    monkeypatch.setenv("VIDEO_BACKFILL_QUEUE_URL", backfill_queue)
    monkeypatch.setenv("LIVE_VIDEO_QUEUE_URL", videos.video_queue)
    put = videos.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x00\x00\x00\x18ftypmp42 video bytes")
    videos.version = VERSIONS[KEY] = put.get("VersionId")
    sqs_event(videos)  # S3's own event for it drained unhandled: it was in the bucket before the stack
    body = event_message(bucket=BUCKET, key=KEY, size=30, etag="e", event_time="2026-12-07T12:00:00.000Z",
                         backfill=True)

    assert labeler.handler(sqs_event(videos, bodies=[body]), LambdaContext()) == {"batchItemFailures": []}
    backfilled = videos.sqs.receive_message(QueueUrl=backfill_queue, AttributeNames=["All"])["Messages"]
    assert queued_videos(videos) == [] and json.loads(backfilled[0]["Body"])["video"]["backfill"] is True

    videos.sqs.send_message(QueueUrl=videos.video_queue, MessageBody="a live upload's video, waiting")
    event = video_event(videos, backfilled)
    assert video.start_handler(event, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": backfilled[0]["MessageId"]}]}  # no Start* call (the stub has none)
    assert labels.running_jobs(videos.table, KEY) is None

    videos.sqs.purge_queue(QueueUrl=videos.video_queue)
    expect_starts(videos)
    assert video.start_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert set(labels.running_jobs(videos.table, KEY)["jobs"]) == {"StartLabelDetection", "StartContentModeration"}

    resend = event_message(bucket=BUCKET, key=KEY, size=30, etag="e", event_time="2026-12-07T13:00:00.000Z")
    labeler.handler(sqs_event(videos, bodies=[resend]), LambdaContext())
    assert len(queued_videos(videos)) == 1


def test_without_a_backfill_video_queue_a_backfilled_video_does_not_wait_for_itself(videos, monkeypatch):
    """A stack without the backfill's video queue puts it on the live queue as a live one:
    marked a backfill there, the gate would count its own message and wait for ever."""
    monkeypatch.delenv("VIDEO_BACKFILL_QUEUE_URL", raising=False)
    monkeypatch.setenv("LIVE_VIDEO_QUEUE_URL", videos.video_queue)
    put = videos.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x00\x00\x00\x18ftypmp42 video bytes")
    videos.version = VERSIONS[KEY] = put.get("VersionId")
    sqs_event(videos)
    body = event_message(bucket=BUCKET, key=KEY, size=30, etag="e", event_time="2026-12-07T12:00:00.000Z",
                         backfill=True)
    labeler.handler(sqs_event(videos, bodies=[body]), LambdaContext())

    messages = queued_videos(videos)  # now hidden: the gate would count it
    assert json.loads(messages[0]["Body"])["video"]["backfill"] is False
    expect_starts(videos)
    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}


def test_with_video_analysis_off_a_video_is_skipped_saying_so(videos, monkeypatch):
    monkeypatch.setenv("VIDEO_APIS", "none")
    messages = uploaded_and_queued(videos)

    assert video.start_handler(video_event(videos, messages), LambdaContext()) == {"batchItemFailures": []}

    record = record_of(item(videos, KEY))
    assert record.status == "SKIPPED" and record.error.code == "VideoAnalysisOff"
