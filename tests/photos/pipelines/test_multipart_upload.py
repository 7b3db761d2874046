"""A video straight from the browser to S3 (issue 22): a multipart upload, each part PUT
to its own presigned URL, resumable from the parts S3 already has, then the same
confirm-and-validate step as a photo's direct upload. Under moto, on a versioned bucket."""

from __future__ import annotations

import json
import math

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core import signing

from photos.models import Photo
from photos.services import uploads
from tests.emulators import moto_s3_storage
from tests.samples import padded, video

pytestmark = pytest.mark.django_db

BUCKET = "mediaapp-multipart-test"
MIB = 1024 * 1024


@pytest.fixture
def s3(settings, monkeypatch):
    settings.PHOTOS_MULTIPART_PART_BYTES = 5 * MIB  # S3's smallest part
    with moto_s3_storage(settings, monkeypatch, BUCKET, versioned=True) as client:
        yield client


@pytest.fixture
def alice(client):
    user = get_user_model().objects.create_user("alice", password="x")
    client.force_login(user)
    return user


def _post(client, path, **body):
    return client.post(f"/photos/direct/{path}", json.dumps(body), content_type="application/json")


def _start(client, data: bytes, *, filename="holiday.mp4", content_type="video/mp4"):
    response = _post(client, "", filename=filename, content_type=content_type, size=len(data))
    assert response.status_code == 200, response.content
    return response.json()


def _put_parts(client, start, data: bytes, numbers=None):
    each, count = start["multipart"]["part_size"], start["multipart"]["parts"]
    numbers = numbers or list(range(1, count + 1))
    urls = _post(client, "parts/", token=start["token"], parts=numbers).json()["urls"]
    for n in numbers:
        response = requests.put(urls[str(n)], data=data[(n - 1) * each : n * each], timeout=30)
        assert response.status_code == 200, response.text


def _in_progress(s3) -> list:
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_a_video_goes_up_in_parts_and_is_checked_and_stored(s3, client, alice, fake_queue,
                                                          django_capture_on_commit_callbacks):
    data = padded(video(seconds=2), 11 * MIB)
    start = _start(client, data, filename="../Beach Day.mp4")

    assert start["multipart"] == {"part_size": 5 * MIB, "parts": 3}
    assert "url" not in start and "fields" not in start  # no POST: S3 caps those at 5 GB
    _put_parts(client, start, data)
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = _post(client, "confirm/", token=start["token"], public=False)

    assert confirmed.status_code == 201, confirmed.content
    photo = Photo.objects.get()
    assert (photo.owner, photo.kind, photo.original_filename, photo.size) == (alice, "video", "Beach Day.mp4", len(data))
    assert photo.duration_ms == 2000 and photo.video_codec == "h264" and photo.content_type == "video/mp4"
    assert photo.image.name.startswith("uploads/") and photo.image.name.endswith(".mp4")
    stored = s3.get_object(Bucket=BUCKET, Key=photo.image.name)
    assert stored["Body"].read() == data and stored["ContentType"] == "video/mp4"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/").get("KeyCount", 0) == 0
    assert _in_progress(s3) == []
    assert ("photos.tasks.analyze_photo", (photo.id,)) in fake_queue.sent
    assert ("photos.tasks.make_stream", (photo.id,)) in fake_queue.sent
    assert confirmed.json()["accepted"][0]["kind"] == "video"


def test_an_interrupted_upload_resumes_with_the_parts_s3_has(s3, client, alice, django_capture_on_commit_callbacks):
    """Parts 1 and 3 arrive, then the connection drops. Asking again lists them with their
    sizes (the page sends only part 2); a confirm before that is refused and loses nothing."""
    data = padded(video(seconds=2), 11 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data, numbers=[1, 3])

    resumed = _post(client, "parts/", token=start["token"], parts=[2]).json()
    early = _post(client, "confirm/", token=start["token"])

    assert resumed["uploaded"] == [{"part": 1, "size": 5 * MIB}, {"part": 3, "size": MIB}]
    assert list(resumed["urls"]) == ["2"]
    assert early.status_code == 400
    assert early.json()["rejected"][0]["error"] == ("1 of 3 parts of holiday.mp4 have not arrived; "
                                                    "choose the file again to resume the upload.")
    assert len(_in_progress(s3)) == 1 and not Photo.objects.exists()

    _put_parts(client, start, data, numbers=[2])
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, "confirm/", token=start["token"]).status_code == 201
    assert s3.get_object(Bucket=BUCKET, Key=Photo.objects.get().image.name)["Body"].read() == data


def test_parts_that_do_not_make_the_declared_file_are_refused_and_dropped(s3, client, alice):
    """The size limit is checked against the declared size; a part of another size (a
    larger file sent under a small declaration) is refused before anything is joined."""
    data = padded(video(seconds=2), 11 * MIB)
    start = _start(client, data)
    bigger = data[: 5 * MIB] + data[5 * MIB : 10 * MIB] + data[10 * MIB :] + bytes(MIB)
    _put_parts(client, start, data, numbers=[1, 2])
    url = _post(client, "parts/", token=start["token"], parts=[3]).json()["urls"]["3"]
    requests.put(url, data=bigger[10 * MIB :], timeout=30)

    refused = _post(client, "confirm/", token=start["token"])

    assert refused.status_code == 400
    assert "arrived in parts that do not make the file that was started" in refused.json()["rejected"][0]["error"]
    assert _in_progress(s3) == [] and not Photo.objects.exists()
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_a_file_that_is_not_a_video_is_refused_and_deleted(s3, client, alice):
    data = b"<html><script>alert(1)</script></html>" + bytes(6 * MIB)
    start = _start(client, data, filename="cat.mp4")
    _put_parts(client, start, data)

    refused = _post(client, "confirm/", token=start["token"])

    assert refused.status_code == 400
    assert refused.json()["rejected"][0]["error"].startswith("cat.mp4 is not a video we can read")
    assert not Photo.objects.exists() and _in_progress(s3) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_a_video_sent_as_quicktime_is_kept_as_the_container_it_is(s3, client, alice,
                                                                 django_capture_on_commit_callbacks):
    """Phones and browsers call many MP4s video/quicktime: the stored key takes the
    extension of what the probe found, so it is served and analysed as what it is."""
    data = video(seconds=2, container="mov")
    mp4 = video(seconds=2, container="mp4")
    start = _start(client, mp4, filename="IMG_0001.MOV", content_type="video/quicktime")
    _put_parts(client, start, mp4)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, "confirm/", token=start["token"]).status_code == 201
    first = Photo.objects.get()
    start = _start(client, data, filename="IMG_0002.MOV", content_type="video/quicktime")
    _put_parts(client, start, data)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, "confirm/", token=start["token"]).status_code == 201
    second = Photo.objects.exclude(pk=first.pk).get()

    assert first.image.name.endswith(".mp4") and first.content_type == "video/mp4"
    assert second.image.name.endswith(".mov") and second.content_type == "video/quicktime"
    again = _post(client, "confirm/", token=start["token"])
    assert again.json()["rejected"][0]["error"] == "This upload was confirmed already."


def test_a_cancelled_upload_drops_its_parts(s3, client, alice):
    data = padded(video(seconds=2), 6 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data, numbers=[1])

    assert _post(client, "abort/", token=start["token"]).json() == {"aborted": True}
    assert _in_progress(s3) == []
    gone = _post(client, "confirm/", token=start["token"]).json()["rejected"][0]["error"]
    assert gone == "This upload has finished or expired; upload the file again."
    assert _post(client, "parts/", token=start["token"], parts=[1]).json()["error"] == gone


def test_refusals(s3, client, alice, settings):
    settings.PHOTOS_MAX_VIDEO_BYTES = 20 * MIB
    too_big = _post(client, "", filename="long.mp4", content_type="video/mp4", size=20 * MIB + 1)
    mkv = _post(client, "", filename="film.mkv", content_type="video/x-matroska", size=MIB)
    start = _start(client, bytes(11 * MIB))
    photo = _post(client, "", filename="a.jpg", content_type="image/jpeg", size=10).json()
    huge_photo = _post(client, "", filename="huge.jpg", content_type="image/jpeg", size=26 * MIB).json()

    assert huge_photo["error"] == "Photos must be between 1 byte and 25.0 MB."  # not 26214400 bytes (new-user trial)
    assert too_big.status_code == 400 and too_big.json()["error"] == "Videos must be between 1 byte and 20.0 MB."
    assert mkv.json()["error"] == "Upload MP4, MOV or WebM videos."
    assert _post(client, "parts/", token=start["token"], parts=[4]).json()["error"] == (
        "Ask for at most 100 parts, numbered 1 to 3.")
    assert _post(client, "parts/", token=start["token"], parts=["1"]).status_code == 400
    assert _post(client, "parts/", token=start["token"], parts=list(range(1, 102))).status_code == 400
    assert _post(client, "parts/", token=start["token"], parts="1").status_code == 400
    assert _post(client, "parts/", token=photo["token"], parts=[1]).json()["error"] == (
        "This upload link is invalid or has expired.")
    client.force_login(get_user_model().objects.create_user("mallory", password="x"))
    for path in ("parts/", "abort/"):
        assert _post(client, path, token=start["token"], parts=[1]).json()["error"] == "This upload belongs to someone else."
    assert _post(client, "confirm/", token=start["token"]).json()["rejected"][0]["error"] == (
        "This upload belongs to someone else.")
    assert len(_in_progress(s3)) == 1  # mallory aborted nothing


def test_a_video_token_lasts_a_day_a_photo_token_minutes(s3, client, alice, monkeypatch):
    real = signing.TimestampSigner.timestamp
    signed_at = {"ago": 0}
    monkeypatch.setattr(signing.TimestampSigner, "timestamp",
                        lambda self: signing.b62_encode(int(signing.b62_decode(real(self))) - signed_at["ago"]))
    signed_at["ago"] = uploads.MULTIPART_SECONDS - 60
    fresh_enough = _start(client, bytes(6 * MIB))
    photo = _post(client, "", filename="a.jpg", content_type="image/jpeg", size=10).json()
    signed_at["ago"] = uploads.MULTIPART_SECONDS + 60
    stale = _start(client, bytes(6 * MIB))

    assert "urls" in _post(client, "parts/", token=fresh_enough["token"], parts=[1]).json()
    assert _post(client, "confirm/", token=photo["token"]).json()["rejected"][0]["error"] == (
        "This upload link has expired; upload the file again.")
    assert _post(client, "parts/", token=stale["token"], parts=[1]).json()["error"] == (
        "This upload link has expired; upload the file again.")


def test_the_confirmation_reads_a_video_to_disk_not_memory(s3, client, alice, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    """The probe gets Django's temporary file (the form path's, for a large upload); the
    object is written to it in chunks of at most 1 MiB."""
    from photos.pipelines.storage import S3MediaStorage
    from photos import validation

    data = padded(video(seconds=2), 11 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data)
    seen, writes = [], []
    real_probe, real_download = validation.probe_upload, S3MediaStorage.download_version

    def spy_download(self, name, version, into, *, max_bytes):
        write = into.write
        into.write = lambda chunk: writes.append(len(chunk)) or write(chunk)
        return real_download(self, name, version, into, max_bytes=max_bytes)

    monkeypatch.setattr(uploads, "probe_upload", lambda upload: seen.append(upload) or real_probe(upload))
    monkeypatch.setattr(S3MediaStorage, "download_version", spy_download)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, "confirm/", token=start["token"]).status_code == 201

    assert hasattr(seen[0], "temporary_file_path") and sum(writes) == len(data) and max(writes) <= MIB


def test_a_video_over_5_gb_is_copied_in_parts(s3, monkeypatch):
    """CopyObject stops at 5 GB: above that the checked version is copied by UploadPartCopy
    (the threshold lowered here to a few MiB to run it)."""
    from boto3.s3.transfer import TransferConfig

    from photos.pipelines import storage as storage_module

    monkeypatch.setattr(storage_module, "COPY_CONFIG", TransferConfig(multipart_threshold=5 * MIB,
                                                                      multipart_chunksize=5 * MIB))
    data = padded(video(seconds=1), 12 * MIB)
    storage = storage_module.media_storage()
    calls = []
    storage.client.meta.events.register("before-call.s3.*", lambda model, **kw: calls.append(model.name))
    first = s3.put_object(Bucket=BUCKET, Key="incoming/x.mp4", Body=data)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="incoming/x.mp4", Body=b"a later version")

    storage.copy_version("incoming/x.mp4", first, to="uploads/2026/12/x.mp4",
                                                content_type="video/mp4")

    stored = s3.get_object(Bucket=BUCKET, Key="uploads/2026/12/x.mp4")
    assert stored["Body"].read() == data and stored["ContentType"] == "video/mp4"
    assert stored["CacheControl"] == "private, max-age=300"
    assert calls.count("UploadPartCopy") == math.ceil(len(data) / (5 * MIB)) == 3 and "CopyObject" not in calls


def test_each_part_url_is_signed_for_its_exact_length(s3, client, alice):
    """The size check happens at the confirmation, but a PUT of more bytes than its part
    must not even be stored (up to 5 GiB a part, billed until the lifecycle rule): each
    URL is signed for Content-Length, which S3 then requires."""
    from urllib.parse import parse_qs, urlsplit

    start = _start(client, bytes(11 * MIB))
    urls = _post(client, "parts/", token=start["token"], parts=[1, 3]).json()["urls"]

    for n in ("1", "3"):
        assert parse_qs(urlsplit(urls[n]).query)["X-Amz-SignedHeaders"] == ["content-length;host"]


def test_a_confirmation_that_fails_after_the_join_can_be_tried_again(s3, client, alice, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    """Storage fails while the joined video is read back (a timeout, a dropped connection):
    the answer says try again (503), nothing is deleted, the page learns the parts are
    joined, and the next confirmation checks the joined object."""
    from botocore.exceptions import ClientError

    from photos.pipelines.storage import S3MediaStorage

    data = padded(video(seconds=2), 11 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data)
    real = S3MediaStorage.download_version
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                              "GetObject")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(S3MediaStorage, "download_version", flaky)
    failed = _post(client, "confirm/", token=start["token"])
    state = _post(client, "parts/", token=start["token"], parts=[]).json()
    with django_capture_on_commit_callbacks(execute=True):
        again = _post(client, "confirm/", token=start["token"])

    assert failed.status_code == 503
    assert failed.json()["rejected"][0]["error"] == ("Storage could not be reached while checking holiday.mp4; "
                                                     "try again in a moment (nothing was lost).")
    assert state["joined"] is True and state["urls"] == {} and len(state["uploaded"]) == 3
    assert again.status_code == 201, again.content
    assert s3.get_object(Bucket=BUCKET, Key=Photo.objects.get().image.name)["Body"].read() == data


def test_only_parts_that_cannot_make_the_file_are_dropped_when_the_join_fails(s3, client, alice, monkeypatch):
    from botocore.exceptions import ClientError

    from photos.pipelines.storage import S3MediaStorage

    data = padded(video(seconds=2), 6 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data)
    codes = iter(["SlowDown", "InvalidPart"])

    def refuse(self, *args):
        raise ClientError({"Error": {"Code": next(codes), "Message": "no"}}, "CompleteMultipartUpload")

    monkeypatch.setattr(S3MediaStorage, "multipart_complete", refuse)

    assert _post(client, "confirm/", token=start["token"]).status_code == 503
    assert len(_in_progress(s3)) == 1  # throttled: the parts are kept
    refused = _post(client, "confirm/", token=start["token"])
    assert refused.status_code == 400 and "(InvalidPart); upload it again" in refused.json()["rejected"][0]["error"]
    assert _in_progress(s3) == []


def test_one_confirmation_at_a_time_per_upload(s3, client, alice):
    from django.core.cache import cache

    data = padded(video(seconds=2), 6 * MIB)
    start = _start(client, data)
    _put_parts(client, start, data)
    incoming = signing.loads(start["token"], salt=uploads.VIDEO_SALT)["incoming"]
    cache.add(f"direct-upload-confirm:{incoming}", True, 60)  # another request is checking it

    busy = _post(client, "confirm/", token=start["token"])

    assert busy.json()["rejected"][0]["error"] == "This upload is being checked already; wait a moment."
    assert len(_in_progress(s3)) == 1 and not Photo.objects.exists()
    cache.delete(f"direct-upload-confirm:{incoming}")


def test_reading_a_version_that_is_gone_is_not_found(s3):
    """A confirmation racing another one that deleted the incoming object: a clear
    FileNotFoundError (the answer says so), not a crash."""
    import io

    from photos.pipelines import media_storage

    version = s3.put_object(Bucket=BUCKET, Key="incoming/gone.mp4", Body=b"x")["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key="incoming/gone.mp4", VersionId=version)

    with pytest.raises(FileNotFoundError):
        media_storage().download_version("incoming/gone.mp4", version, io.BytesIO(), max_bytes=10)


def test_storage_failing_is_a_503_the_page_can_retry_not_a_500(s3, client, alice, monkeypatch):
    from botocore.exceptions import ClientError

    from photos.pipelines.storage import S3MediaStorage

    start = _start(client, bytes(6 * MIB))

    def down(self, *args, **kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "Please reduce your request rate."}},
                          "S3")

    for method in ("multipart_start", "multipart_parts", "multipart_abort"):
        monkeypatch.setattr(S3MediaStorage, method, down)
    answers = [_post(client, "", filename="a.mp4", content_type="video/mp4", size=MIB),
               _post(client, "parts/", token=start["token"], parts=[1]),
               _post(client, "abort/", token=start["token"])]

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert {a.json()["error"] for a in answers} == {"Storage could not be reached; try again in a moment "
                                                    "(nothing was lost)."}
