"""Storage: local filesystem by default, django-storages' S3 backend under moto."""

from __future__ import annotations

import boto3
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from moto import mock_aws

from photos.pipelines.local import analyze_photo
from photos.renditions import make_thumbnail
from photos.models import Label, Photo
from tests.emulators import moto_s3_storage, use_s3_storage
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db

BUCKET = "mediaapp-test-media"


@pytest.fixture
def s3(settings, monkeypatch):
    with moto_s3_storage(settings, monkeypatch, BUCKET) as client:
        yield client


def test_local_storage_is_the_default(media_root):
    name = default_storage.save("uploads/x/a.jpg", ContentFile(b"data"))

    assert (media_root / name).read_bytes() == b"data"


def test_upload_lands_in_s3_privately_and_is_analysed_from_there(s3, client, django_capture_on_commit_callbacks):
    user = get_user_model().objects.create_user("alice", password="x")
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/photos/", {"photos": [ContentFile(photo_bytes("grace_hopper"), name="gh.jpg")]})

    photo = Photo.objects.get()
    head = s3.head_object(Bucket=BUCKET, Key=photo.image.name)
    assert head["ContentLength"] == len(photo_bytes("grace_hopper"))
    grants = s3.get_object_acl(Bucket=BUCKET, Key=photo.image.name)["Grants"]
    assert [g["Grantee"].get("URI") for g in grants if g["Grantee"]["Type"] == "Group"] == []  # nobody public

    analyze_photo.run(photo.id)
    make_thumbnail.run(photo.id)

    assert Label.objects.filter(photo=photo, name="Face").exists()
    assert s3.head_object(Bucket=BUCKET, Key=f"thumbnails/{photo.uid}.jpg")["ContentLength"] > 0


def test_existing_objects_are_never_overwritten(s3):
    first = default_storage.save("uploads/same.jpg", ContentFile(b"one"))
    second = default_storage.save("uploads/same.jpg", ContentFile(b"two"))

    assert first != second
    assert s3.get_object(Bucket=BUCKET, Key=first)["Body"].read() == b"one"


def test_image_view_redirects_the_owner_to_a_short_lived_presigned_url(s3, client):
    user = get_user_model().objects.create_user("alice", password="x")
    photo = Photo(owner=user, original_filename="a.jpg", content_type="image/jpeg")
    photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
    client.force_login(user)

    response = client.get(f"/photos/{photo.uid}/image/")

    assert response.status_code == 302
    location = response["Location"]
    assert f"{BUCKET}" in location and photo.image.name in location
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    client.logout()
    assert client.get(f"/photos/{photo.uid}/image/").status_code == 404


def test_a_videos_presigned_url_lasts_while_it_plays(s3, client):
    """A player asks S3 for byte ranges as long as it plays and whenever it is sought: a
    10-minute video's URL lasts three viewings plus ten minutes (2,400 s), not the 300 s
    of a photo's. Used to be: 300 s, and seeking after five minutes failed."""
    from tests.samples import video

    user = get_user_model().objects.create_user("alice", password="x")
    photo = Photo(owner=user, original_filename="a.mp4", content_type="video/mp4", kind=Photo.Kind.VIDEO,
                  duration_ms=600_000)
    photo.image.save("a.mp4", ContentFile(video(seconds=1)))
    client.force_login(user)

    location = client.get(f"/photos/{photo.uid}/image/")["Location"]

    assert "X-Amz-Expires=2400" in location
    Photo.objects.filter(id=photo.id).update(duration_ms=10 * 3600_000)  # capped at 12 hours
    assert "X-Amz-Expires=43200" in client.get(f"/photos/{photo.uid}/image/")["Location"]


def test_reanalysis_in_the_aws_pipeline_messages_the_labeler_and_leaves_the_object_alone(s3, settings):
    """Not a self-copy (a new version each time, Content-Type reset to
    binary/octet-stream, Cache-Control dropped): an S3-event-shaped message on the
    labeler's queue (issue #11, finding 5)."""
    import json

    import boto3

    from photos.services.photos import photos_reanalyse

    settings.PHOTOS_PIPELINE = "aws"
    sqs = boto3.client("sqs", region_name="us-east-1")
    settings.LABELER_QUEUE_URL = sqs.create_queue(QueueName="labeler")["QueueUrl"]
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    photo = Photo(original_filename="a b.jpg", content_type="image/jpeg", status="labeled", size=3, etag="e1")
    photo.image.save("a b.jpg", ContentFile(photo_bytes("rocket")))
    before = s3.head_object(Bucket=BUCKET, Key=photo.image.name)

    assert photos_reanalyse(photo_ids=[photo.id]) == 1

    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=photo.image.name)["Versions"]
    assert len(versions) == 1
    after = s3.head_object(Bucket=BUCKET, Key=photo.image.name)
    assert after["ContentType"] == before["ContentType"] and after["ETag"] == before["ETag"]
    (message,) = sqs.receive_message(QueueUrl=settings.LABELER_QUEUE_URL)["Messages"]
    (record,) = json.loads(message["Body"])["Records"]
    from infra.functions.labeler.events import parse_message

    (obj,) = parse_message(message["Body"])
    assert record["reanalyse"] is True and obj.reanalyse and obj.key == photo.image.name
    assert Photo.objects.get(pk=photo.pk).status == "queued"


def _direct(client, **body):
    import json

    return client.post("/photos/direct/", json.dumps(body), content_type="application/json")


def _confirm(client, token, public=False):
    import json

    return client.post("/photos/direct/confirm/", json.dumps({"token": token, "public": public}), content_type="application/json")


def _post_to_s3(start, data: bytes, content_type: str):
    import requests

    return requests.post(start["url"], data=start["fields"], files={"file": ("upload", data, content_type)}, timeout=30)


def test_direct_upload_to_s3_then_confirm_creates_the_photo(s3, client, django_capture_on_commit_callbacks, fake_queue):
    import base64
    import json

    user = get_user_model().objects.create_user("alice", password="x")
    client.force_login(user)

    start = _direct(client, filename="../My Holiday.JPG", content_type="image/jpeg", size=len(photo_bytes("rocket"))).json()
    policy = json.loads(base64.b64decode(start["fields"]["policy"]))
    assert ["content-length-range", 1, 25 * 1024 * 1024] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert _post_to_s3(start, photo_bytes("rocket"), "image/jpeg").status_code in (200, 204)

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = _confirm(client, start["token"], public=True)

    assert confirmed.status_code == 201
    photo = Photo.objects.get()
    assert start["fields"]["key"].startswith("incoming/") and photo.image.name.startswith("uploads/")
    assert s3.get_object(Bucket=BUCKET, Key=photo.image.name)["Body"].read() == photo_bytes("rocket")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/").get("KeyCount", 0) == 0
    assert (photo.owner, photo.original_filename, photo.width, photo.visibility) == (user, "My Holiday.JPG", 640, "public")
    assert ("photos.tasks.analyze_photo", (photo.id,)) in fake_queue.sent


def test_a_disguised_file_put_directly_is_refused_and_deleted(s3, client):
    user = get_user_model().objects.create_user("alice", password="x")
    client.force_login(user)
    start = _direct(client, filename="cat.jpg", content_type="image/jpeg", size=40).json()
    _post_to_s3(start, b"<html><script>alert(1)</script></html>", "image/jpeg")

    response = _confirm(client, start["token"])

    assert response.status_code == 400
    assert "cat.jpg is not an image we can read" in response.json()["rejected"][0]["error"]
    assert not Photo.objects.exists()
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/").get("KeyCount", 0) == 0
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/").get("KeyCount", 0) == 0


@pytest.mark.parametrize("versioned", [True, False])
def test_a_presigned_post_replayed_after_confirmation_changes_nothing_validated(s3, client, versioned,
                                                                                django_capture_on_commit_callbacks):
    """The POST is valid for 600 s: the browser (or whoever holds it) posts again after
    the confirmation, HTML this time. It lands under incoming/ only; the photo's object
    is the validated JPEG, and confirming again is refused."""
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.force_login(get_user_model().objects.create_user("alice", password="x"))
    start = _direct(client, filename="a.jpg", content_type="image/jpeg", size=len(photo_bytes("rocket"))).json()
    _post_to_s3(start, photo_bytes("rocket"), "image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        assert _confirm(client, start["token"]).status_code == 201
    photo = Photo.objects.get()

    assert _post_to_s3(start, b"<html><script>alert(1)</script></html>", "image/jpeg").status_code in (200, 204)
    again = _confirm(client, start["token"])

    assert again.status_code == 400 and again.json()["rejected"][0]["error"] == "This upload was confirmed already."
    stored = s3.get_object(Bucket=BUCKET, Key=photo.image.name)
    assert stored["Body"].read() == photo_bytes("rocket") and stored["ContentType"] == "image/jpeg"
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=photo.image.name).get("Versions", [])) == 1


def test_a_confirm_that_loses_a_race_never_deletes_the_winners_object(s3):
    """A double-click confirms one token twice: the loser must not delete every version
    of the key the winner's photo holds (S3 would then tell the labeler to erase it)."""
    from photos.services.uploads import discard_unless_claimed

    s3.put_object(Bucket=BUCKET, Key="uploads/2026/12/won.jpg", Body=photo_bytes("rocket"))
    s3.put_object(Bucket=BUCKET, Key="uploads/2026/12/lost.jpg", Body=photo_bytes("rocket"))
    Photo.objects.create(image="uploads/2026/12/won.jpg", original_filename="won.jpg")

    assert discard_unless_claimed("uploads/2026/12/won.jpg") is False
    assert discard_unless_claimed("uploads/2026/12/lost.jpg") is True
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/")["Contents"]] == ["uploads/2026/12/won.jpg"]


def test_bytes_swapped_between_the_check_and_the_copy_are_not_what_is_kept(s3, client, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    """A replay racing the confirmation: the copy takes the version that was checked."""
    from photos.pipelines.storage import S3MediaStorage

    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.force_login(get_user_model().objects.create_user("alice", password="x"))
    start = _direct(client, filename="a.jpg", content_type="image/jpeg", size=len(photo_bytes("rocket"))).json()
    _post_to_s3(start, photo_bytes("rocket"), "image/jpeg")
    real_read = S3MediaStorage.read_version

    def read_then_replay(self, name, *, max_bytes):
        result = real_read(self, name, max_bytes=max_bytes)
        _post_to_s3(start, b"<html>swapped in</html>", "image/jpeg")
        return result

    monkeypatch.setattr(S3MediaStorage, "read_version", read_then_replay)
    with django_capture_on_commit_callbacks(execute=True):
        assert _confirm(client, start["token"]).status_code == 201

    assert s3.get_object(Bucket=BUCKET, Key=Photo.objects.get().image.name)["Body"].read() == photo_bytes("rocket")


def test_direct_upload_refusals(s3, client):
    alice = get_user_model().objects.create_user("alice", password="x")
    client.force_login(alice)

    assert _direct(client, filename="a.gif", content_type="image/gif", size=10).status_code == 400
    assert _direct(client, filename="a.jpg", content_type="image/jpeg", size=10**9).status_code == 400
    start = _direct(client, filename="a.jpg", content_type="image/jpeg", size=10).json()
    assert _confirm(client, start["token"]).json()["rejected"][0]["error"].startswith("The file never reached storage")
    assert _confirm(client, start["token"] + "x").json()["rejected"][0]["error"] == "This upload link is invalid or has expired."
    client.force_login(get_user_model().objects.create_user("mallory", password="x"))
    assert _confirm(client, start["token"]).json()["rejected"][0]["error"] == "This upload belongs to someone else."


def test_direct_upload_is_off_without_s3(client):
    client.force_login(get_user_model().objects.create_user("alice", password="x"))

    assert _direct(client, filename="a.jpg", content_type="image/jpeg", size=10).status_code == 404


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _directive(policy: str, name: str) -> list[str]:
    return next(part.split()[1:] for part in policy.split(";") if part.split()[:1] == [name])


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_csp_allows_the_hosts_the_signed_urls_really_have_in_a_real_account(region, settings, monkeypatch, client):
    """As in a real account: no endpoint URL, the region the bucket is in, django-storages'
    default addressing. boto3 then signs for https://<bucket>.s3.amazonaws.com, which
    the regional host the CSP used to allow is not."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket=BUCKET, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))
        use_s3_storage(settings, BUCKET)
        settings.STORAGES["default"]["OPTIONS"]["region_name"] = region
        settings.STORAGES = dict(settings.STORAGES)  # the storage is rebuilt for the new region
        settings.CSP_MEDIA_ORIGINS = []
        user = get_user_model().objects.create_user("alice", password="x")
        photo = Photo(owner=user, original_filename="a.jpg", content_type="image/jpeg")
        photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
        client.force_login(user)

        image = client.get(f"/photos/{photo.uid}/image/")["Location"]
        post = _direct(client, filename="b.jpg", content_type="image/jpeg", size=100).json()["url"]
        policy = client.get("/photos/")["Content-Security-Policy"]

    assert _origin(image) in _directive(policy, "img-src")
    assert _origin(post) in _directive(policy, "connect-src") and _origin(post) in _directive(policy, "form-action")


@pytest.mark.parametrize("size", ["1e400", "-1e400", "NaN", "[1]", '"x"'])
def test_a_direct_upload_with_an_impossible_size_is_a_400(s3, client, size):
    """{"size": 1e400} was a 500 (int(inf) overflows) (issue 19, finding 3)."""
    client.force_login(get_user_model().objects.create_user("sizer", password="x"))

    response = client.post("/photos/direct/", '{"filename": "a.jpg", "content_type": "image/jpeg", "size": %s}' % size,
                           content_type="application/json")

    assert response.status_code == 400
    assert "error" in response.json()
