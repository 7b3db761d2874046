"""The whole AWS path offline: upload through the Django form -> S3 -> SQS -> the Lambda
handler -> DynamoDB -> sync -> labels visible in the admin. moto's server stands in for
S3, SQS and DynamoDB; LocalRekognition for Amazon Rekognition."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from infra.functions.labeler.table import record_of
from infra.local_aws import LambdaRunner, create_resources
from photos.pipelines import sync
from photos.models import Photo
from tests.emulators import moto_server, use_s3_storage
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_aws(settings, monkeypatch):
    with moto_server() as endpoint:
        aws = create_resources(endpoint, prefix=f"e2e{endpoint.rsplit(':', 1)[1]}")
        for key, value in aws.django_env().items():
            monkeypatch.setenv(key, value)
        settings.PHOTOS_PIPELINE = "aws"
        settings.AWS_ENDPOINT_URL = aws.endpoint
        settings.LABELS_TABLE_NAME = aws.table
        settings.LABELER_QUEUE_URL = aws.queue_url
        settings.LABELER_BACKFILL_QUEUE_URL = aws.backfill_url
        settings.LABELER_DLQ_URL = aws.dlq_url
        use_s3_storage(settings, aws.bucket, aws.endpoint)
        yield aws


def test_upload_to_labels_in_the_admin_through_the_aws_path(local_aws, client, fake_queue):
    user = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(user)

    response = client.post("/photos/", {"photos": [SimpleUploadedFile("Grace Hopper.jpg", photo_bytes("grace_hopper"), "image/jpeg")]})
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.status == Photo.Status.UPLOADED  # no local analysis in aws mode
    assert [name for name, _ in fake_queue.sent] == ["photos.tasks.make_thumbnail"]

    runner = LambdaRunner(local_aws)
    delivered = {"received": 0, "failed": 0}
    for _ in range(5):  # the s3:TestEvent and the upload's event
        got = runner.poll_once()
        delivered = {k: delivered[k] + got[k] for k in delivered}
    assert delivered["failed"] == 0 and delivered["received"] >= 2

    result = sync.sync_labels()
    assert result.applied == 1

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED
    assert photo.labels.filter(name="Face").exists()
    page = client.get("/admin/photos/photo/").content.decode()
    assert "Face" in page and "Grace Hopper.jpg" in page

    # The admin's refresh button reads the same record back (one GetItem).
    refresh = client.post(f"/admin/photos/photo/{photo.pk}/refresh/", follow=True)
    assert "Already up to date with DynamoDB." in refresh.content.decode()


def labelled_upload(local_aws, client):
    """A user's upload through the form, analysed by the handler and synced back: the
    photo and the runner that fed the handler."""
    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("cat.png", photo_bytes("chelsea"), "image/png")]})
    runner = LambdaRunner(local_aws)
    for _ in range(5):
        runner.poll_once()
    sync.sync_labels()
    return Photo.objects.get(), runner


def test_a_deleted_photo_never_comes_back(local_aws, client, fake_queue):
    """Erasure: delete, then replay the upload's S3 event, retry, sync and reconcile: the
    photo stays gone, every version of its object too (issue #11, finding 1)."""
    import json

    import boto3
    from django.core.management import call_command

    photo, runner = labelled_upload(local_aws, client)
    key = photo.image.name
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED

    client.post(f"/photos/{photo.uid}/erase/")
    for _ in range(5):  # the ObjectRemoved events of the app's own deletes
        runner.poll_once()
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    versions = s3.list_object_versions(Bucket=local_aws.bucket, Prefix=key)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []

    replay = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                           "eventTime": "2030-01-01T00:00:00.000Z", "s3": {"bucket": {"name": local_aws.bucket},
                                                                          "object": {"key": key, "size": 10, "eTag": "e"}}}]}
    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    sqs.send_message(QueueUrl=local_aws.queue_url, MessageBody=json.dumps(replay))
    for _ in range(3):
        assert runner.poll_once()["failed"] == 0
    sync.sync_labels()
    call_command("reconcile_labels", segments=2)

    assert not Photo.objects.filter(image=key).exists()
    table = boto3.resource("dynamodb", endpoint_url=local_aws.endpoint, region_name="us-east-1").Table(local_aws.table)
    assert "Item" not in table.get_item(Key={"pk": f"IMG#{key}", "sk": "ANALYSIS"})
    assert table.get_item(Key={"pk": f"IMG#{key}", "sk": "ERASED"})["Item"]["key"] == key


def s3_versions(local_aws, prefix):
    import boto3

    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    return s3.list_object_versions(Bucket=local_aws.bucket, Prefix=prefix).get("Versions", [])


def test_an_object_deleted_outside_the_app_takes_its_photo_along(local_aws, client, fake_queue):
    import boto3

    from photos import tasks
    from photos.models import AuditEvent

    photo, runner = labelled_upload(local_aws, client)
    client.logout()
    Photo.objects.filter(pk=photo.pk).update(visibility="public")
    assert client.get(f"/photos/{photo.uid}/image/").status_code == 302  # the rendition, made and stored in S3
    assert s3_versions(local_aws, f"renditions/{photo.uid}")

    # Someone deletes the object in the console, every version. (S3 also notifies a plain
    # delete, ObjectRemoved:DeleteMarkerCreated; moto sends only the permanent delete.)
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    for version in s3.list_object_versions(Bucket=local_aws.bucket, Prefix=photo.image.name)["Versions"]:
        s3.delete_object(Bucket=local_aws.bucket, Key=photo.image.name, VersionId=version["VersionId"])
    for _ in range(3):
        runner.poll_once()
    sync.sync_labels()
    tasks.finish_erasures.run()  # the outbox, on beat

    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, actor=None).exists()
    # What the app made from it goes too: no version of its rendition is left.
    assert s3.list_object_versions(Bucket=local_aws.bucket, Prefix=f"renditions/{photo.uid}").get("Versions", []) == []


def test_reanalysis_replaces_the_record_without_touching_the_object(local_aws, client, fake_queue):
    import boto3

    from photos.services.photos import photos_reanalyse

    photo, runner = labelled_upload(local_aws, client)
    table = boto3.resource("dynamodb", endpoint_url=local_aws.endpoint, region_name="us-east-1").Table(local_aws.table)
    first = table.get_item(Key={"pk": f"IMG#{photo.image.name}", "sk": "ANALYSIS"})["Item"]

    assert photos_reanalyse(photo_ids=[photo.pk]) == 1
    for _ in range(3):
        assert runner.poll_once()["failed"] == 0

    second = table.get_item(Key={"pk": f"IMG#{photo.image.name}", "sk": "ANALYSIS"})["Item"]
    assert second["s3_sequencer"] > first["s3_sequencer"]
    assert record_of(second).analyzed_at > record_of(first).analyzed_at
    assert len(s3_versions(local_aws, photo.image.name)) == 1  # no copy, no new version
    sync.sync_labels()
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED and photo.labels.filter(name="Cat").exists()


def test_analyse_bucket_backfills_objects_that_never_had_a_record(local_aws, fake_queue):
    """Images already in the bucket before the stack (events lost): the backfill sends
    exactly those with no record and no tombstone, and the pipeline labels them."""
    import io as _io
    from contextlib import redirect_stderr

    import boto3
    from django.core.management import call_command

    from infra.functions.labeler.record import now_iso
    from infra.functions.labeler.table import tombstone_item

    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    table = boto3.resource("dynamodb", endpoint_url=local_aws.endpoint, region_name="us-east-1").Table(local_aws.table)
    runner = LambdaRunner(local_aws)
    s3.put_object(Bucket=local_aws.bucket, Key="uploads/old/done.jpg", Body=photo_bytes("rocket"))
    for _ in range(3):
        runner.poll_once()  # done.jpg has its record
    for key, name in (("uploads/old/cat.jpg", "chelsea"), ("uploads/old/Coffee.PNG", "coffee"), ("uploads/old/gone.jpg", "camera")):
        s3.put_object(Bucket=local_aws.bucket, Key=key, Body=photo_bytes(name))
    table.put_item(Item=tombstone_item(bucket=local_aws.bucket, key="uploads/old/gone.jpg", at=now_iso(), reason="test"))
    sqs.purge_queue(QueueUrl=local_aws.queue_url)  # as if the objects predated the notifications

    out = _io.StringIO()
    with redirect_stderr(_io.StringIO()):
        call_command("analyse_bucket", dry_run=True, stdout=out)
    assert sorted(line.split()[-1] for line in out.getvalue().splitlines() if line.startswith("would send")) == [
        "uploads/old/Coffee.PNG", "uploads/old/cat.jpg"]

    with redirect_stderr(_io.StringIO()):
        call_command("analyse_bucket", stdout=_io.StringIO())
    assert runner.poll_once()["received"] == 0  # nothing on the live uploads' queue
    for _ in range(3):
        assert runner.poll_once(backfill=True)["failed"] == 0
    sync.sync_labels()

    assert sorted(Photo.objects.values_list("image", flat=True)) == [
        "uploads/old/Coffee.PNG", "uploads/old/cat.jpg", "uploads/old/done.jpg"]
    assert Photo.objects.get(image="uploads/old/cat.jpg").labels.filter(name="Cat").exists()
    assert not Photo.objects.filter(image="uploads/old/gone.jpg").exists()


def drop_messages(local_aws) -> int:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    dropped = 0
    while got := sqs.receive_message(QueueUrl=local_aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            sqs.delete_message(QueueUrl=local_aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
            dropped += 1
    return dropped


def lose_the_upload_event(local_aws, client):
    """An upload whose S3 event never reaches the labeler (purged from the queue, as a
    lost notification or a message gone to the DLQ would leave it)."""
    import boto3

    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("cat.png", photo_bytes("chelsea"), "image/png")]})
    drop_messages(local_aws)
    photo = Photo.objects.get()
    assert photo.status in (Photo.Status.UPLOADED, Photo.Status.QUEUED)
    return photo


def waited(photo, settings, periods: float = 1):
    """The clock moved on: the photo has waited longer than the AWS sweep's threshold."""
    from datetime import timedelta

    from django.utils import timezone

    Photo.objects.filter(pk=photo.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.AWS_STUCK_AFTER_SECONDS * periods + 1))


def test_a_lost_upload_event_is_healed_by_the_sweep(local_aws, client, fake_queue, settings):
    from photos import tasks

    photo = lose_the_upload_event(local_aws, client)
    runner = LambdaRunner(local_aws)
    assert tasks.sweep_stuck_photos.run()["found"] == 0  # not waited long enough: left alone
    waited(photo, settings)

    assert tasks.sweep_stuck_photos.run() == {"enqueued": 1, "failed": 0, "found": 1, "synced": 0}
    for _ in range(3):
        runner.poll_once()
    assert tasks.sweep_stuck_photos.run()["found"] == 0  # sent again just now
    waited(photo, settings)
    assert tasks.sweep_stuck_photos.run()["synced"] == 1  # the second run pulls the record in

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED and photo.labels.filter(name="Cat").exists()


def test_a_photo_the_labeler_never_answers_fails_after_three_tries_with_a_reason(local_aws, client, fake_queue, settings):
    from photos import tasks

    photo = lose_the_upload_event(local_aws, client)
    for _ in range(3):
        waited(photo, settings)
        assert tasks.sweep_stuck_photos.run()["enqueued"] == 1
        assert drop_messages(local_aws) == 1  # lost again
    waited(photo, settings)

    assert tasks.sweep_stuck_photos.run() == {"enqueued": 0, "failed": 1, "found": 1, "synced": 0}
    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert photo.status_reason == "No analysis came back after 3 tries; an administrator can start it again."
    client.force_login(photo.owner)
    assert photo.status_reason in client.get(f"/photos/{photo.uid}/").content.decode()

    # An administrator starts it again: the sweep's tries count afresh.
    from photos.services.photos import photos_reanalyse

    assert photos_reanalyse(photo_ids=[photo.pk]) == 1
    assert drop_messages(local_aws) == 1  # lost once more
    waited(photo, settings)
    assert tasks.sweep_stuck_photos.run()["enqueued"] == 1


def test_the_sweep_neither_resends_nor_gives_up_while_a_live_backlog_drains(local_aws, client, fake_queue, settings):
    """A burst of uploads still queued: the photo may be in it. Re-sending would grow the
    backlog, and "no analysis came back" would be false."""
    import boto3

    from photos import tasks

    photo = lose_the_upload_event(local_aws, client)
    Photo.objects.filter(pk=photo.pk).update(analysis_attempts=3)  # would be given up
    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    sqs.send_message(QueueUrl=local_aws.queue_url, MessageBody="{}")  # someone else's upload, waiting
    waited(photo, settings)

    assert tasks.sweep_stuck_photos.run() == {"enqueued": 0, "failed": 0, "found": 1, "synced": 0}
    photo.refresh_from_db()
    assert photo.status != Photo.Status.FAILED


# moto's SQS scans every message of a queue on each send (its own TODO in sqs/models.py):
# 10,000 messages cost ~15 minutes there, 1,000 a few seconds. The lanes do not depend on
# the count: the live queue never holds a backfill message.
BACKLOG = 1_000


def test_a_live_upload_is_analysed_first_while_a_backfill_backlog_waits(local_aws, client, fake_queue):
    """The backfill's lane: a backlog queued by a backfill, then a user uploads. The
    upload's event is on the live queue alone, analysed at the first poll, and the
    backlog is still all there (in AWS each queue has its own poller and concurrency)."""
    import boto3

    from photos.pipelines.aws import AwsPipeline

    sent = 0
    for start in range(0, BACKLOG, 10):
        sent += len(AwsPipeline().backfill([(str(n), f"uploads/old/{n}.jpg", 10, "e") for n in range(start, start + 10)]))
    assert sent == BACKLOG
    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("cat.png", photo_bytes("chelsea"), "image/png")]})

    runner = LambdaRunner(local_aws)
    assert runner.poll_once()["failed"] == 0
    sync.sync_labels()

    photo = Photo.objects.get()
    assert photo.status == Photo.Status.LABELED and photo.labels.filter(name="Cat").exists()
    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    waiting = sqs.get_queue_attributes(QueueUrl=local_aws.backfill_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert waiting["Attributes"]["ApproximateNumberOfMessages"] == str(BACKLOG)


def test_a_video_is_given_the_hours_its_jobs_may_wait_before_the_sweep_sends_it_again(local_aws, client, fake_queue,
                                                                                     settings):
    """Rekognition Video's jobs may wait hours for the concurrent-jobs quota: a video
    whose record has not come is sent again only after AWS_VIDEO_STUCK_AFTER_SECONDS (the
    starter then also collects jobs whose completion was lost), a photo after
    AWS_STUCK_AFTER_SECONDS. Used to be: a video was sent again after 20 minutes and
    marked failed after an hour."""
    from photos import tasks
    from tests.samples import video

    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("clip.mp4", video(seconds=1), "video/mp4")]})
    drop_messages(local_aws)
    clip = Photo.objects.get()
    assert clip.is_video

    waited(clip, settings, periods=3)  # an hour: long for a photo, not for a video
    assert tasks.sweep_stuck_photos.run()["found"] == 0
    waited(clip, settings, periods=settings.AWS_VIDEO_STUCK_AFTER_SECONDS / settings.AWS_STUCK_AFTER_SECONDS)
    assert tasks.sweep_stuck_photos.run()["enqueued"] == 1


def test_the_app_reads_the_timeline_the_collector_wrote(local_aws, client, fake_queue):
    """One name for a video's timeline on both paths (video_jobs.timeline_key), under the
    prefix the app may read and erase."""
    import json

    import boto3

    from infra import resources
    from infra.functions.labeler.video_jobs import TIMELINE_PREFIX, timeline_key
    from photos.renditions import photo_timeline, timeline_name
    from tests.samples import video

    assert TIMELINE_PREFIX == resources.RENDITION_PREFIX
    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("clip.mp4", video(seconds=1), "video/mp4")]})
    clip = Photo.objects.get()
    assert timeline_name(clip) == timeline_key(clip.key) == f"renditions/{clip.uid}.timeline.json"
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint, region_name="us-east-1")
    s3.put_object(Bucket=local_aws.bucket, Key=timeline_key(clip.key), Body=json.dumps({"frames": [0, 1000]}).encode())

    assert photo_timeline(clip) == {"frames": [0, 1000]}


def test_a_video_through_the_offline_aws_path_gets_the_local_paths_timeline(local_aws, client, fake_queue):
    """Upload through the form -> S3 -> the labeler queues the video -> the real starter
    starts Rekognition Video's jobs (emulated from the local worker's analysis) -> the
    notices reach the completion queue through SNS -> the real collector pages the
    results -> the sync. The timeline the app reads is the one the local path makes of the
    same file (issue 22's target for `make run-aws-local`)."""
    from django.core.files.base import ContentFile

    from photos.pipelines.local import video_analyze
    from photos.renditions import photo_timeline
    from tests.samples import video

    data = video(seconds=4, size=(640, 480), photo="chelsea", dark_seconds=1.5)
    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    client.post("/photos/", {"photos": [SimpleUploadedFile("cat.mp4", data, "video/mp4")]})
    clip = Photo.objects.get()
    runner = LambdaRunner(local_aws, synchronous_video=True)
    for _ in range(4):
        runner.poll_once()
        runner.poll_videos()
    assert sync.sync_labels().applied == 1

    clip.refresh_from_db()
    assert clip.status == Photo.Status.LABELED and clip.labels.filter(name="Cat").exists()
    offline = photo_timeline(clip)
    same = Photo(owner=clip.owner, kind=Photo.Kind.VIDEO, original_filename="same.mp4", content_type="video/mp4")
    same.image.save("same.mp4", ContentFile(data))
    video_analyze(same)
    local = photo_timeline(same)
    for part in ("labels", "label_timestamps", "moderation", "text"):
        assert offline[part] == local[part], part
    # Rekognition Video does not say which frames it looked at: the collector knows the
    # moments something was seen (not the dark start), the local path every sample.
    assert set(offline["frames"]) < set(local["frames"]) and min(offline["frames"]) >= 1500
