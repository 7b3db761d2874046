"""Uploads through the form: every kind of bad file is refused with a clear message and
nothing stored; good files are stored under UUID keys and their analysis is enqueued
after the transaction commits."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from kombu.exceptions import OperationalError
from PIL import Image

from photos.models import Photo
from tests.samples import encode, photo_bytes

pytestmark = pytest.mark.django_db

MY_PHOTOS = "/photos/"


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def client_in(client, user):
    client.force_login(user)
    return client


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_anonymous_upload_goes_to_login(client):
    response = client.post(MY_PHOTOS, {"photos": upload("a.jpg", photo_bytes("rocket"))})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Photo.objects.count() == 0


def test_good_upload_is_stored_under_a_uuid_key_and_enqueued_after_commit(
    client_in, user, media_root, fake_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_in.post(MY_PHOTOS, {"photos": upload("Holiday Photo.JPG", photo_bytes("rocket"))})

    assert response.status_code == 302
    photo = Photo.objects.get()
    assert re.fullmatch(r"uploads/\d{4}/\d{2}/[0-9a-f-]{36}\.jpg", photo.image.name)
    assert photo.image.name.endswith(f"{photo.uid}.jpg")
    assert (photo.owner, photo.original_filename, photo.content_type) == (user, "Holiday Photo.JPG", "image/jpeg")
    assert (photo.width, photo.height, photo.size) == (640, 427, len(photo_bytes("rocket")))
    import hashlib
    assert photo.sha256 == hashlib.sha256(photo_bytes("rocket")).hexdigest()
    assert stored_files(media_root) == [photo.image.name]
    assert len(callbacks) == 1
    assert fake_queue.sent == [("photos.tasks.analyze_photo", (photo.id,)), ("photos.tasks.make_thumbnail", (photo.id,))]
    assert Photo.objects.get().status == Photo.Status.QUEUED


def test_nothing_is_enqueued_before_commit(client_in, fake_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_in.post(MY_PHOTOS, {"photos": upload("a.png", photo_bytes("astronaut"), "image/png")})

    assert fake_queue.sent == []
    assert len(callbacks) == 1


def test_several_files_at_once_each_stored(client_in, media_root, django_capture_on_commit_callbacks):
    files = [upload("a.png", photo_bytes("astronaut"), "image/png"), upload("b.jpg", photo_bytes("grace_hopper"))]

    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(MY_PHOTOS, {"photos": files})

    assert sorted(Photo.objects.values_list("original_filename", flat=True)) == ["a.png", "b.jpg"]
    assert len(stored_files(media_root)) == 2
    assert {p.rsplit(".", 1)[1] for p in stored_files(media_root)} == {"png", "jpg"}


def _bomb_png(side: int = 20_000) -> bytes:
    """A PNG whose header claims side x side pixels, in a few kilobytes."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 60_001 * 8)) + chunk(b"IEND", b"")


BAD_FILES = {
    "not an image": (b"just some text, not a photo", "notes.jpg", "is not an image we can read"),
    "html disguised as jpeg": (b"<!doctype html><script>alert(1)</script>", "cute-cat.jpg", "is not an image we can read"),
    "svg disguised as jpeg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.jpg", "is not an image we can read"),
    "truncated jpeg": (photo_bytes("rocket")[:8000], "cut.jpg", "is truncated or corrupt"),
    "unsupported format": (encode(Image.new("RGB", (120, 120), "red"), "GIF"), "anim.gif", "is a GIF image; upload JPEG, PNG, WebP, HEIC or AVIF"),
    "zero bytes": (b"", "empty.jpg", "is empty (0 bytes)"),
    "decompression bomb": (_bomb_png(), "bomb.png", "has far too many pixels; the limit is 50 MP."),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_with_a_clear_message_and_nothing_stored(client_in, media_root, fake_queue, case):
    data, name, expected = BAD_FILES[case]

    response = client_in.post(MY_PHOTOS, {"photos": upload(name, data)})

    assert response.status_code == 400
    text = " ".join(messages_of(response)) + response.content.decode()
    assert expected in text, text[:500]
    assert name in text
    assert Photo.objects.count() == 0
    assert stored_files(media_root) == []
    assert fake_queue.sent == []


def test_over_the_byte_limit_is_refused(client_in, media_root, settings):
    settings.PHOTOS_MAX_UPLOAD_BYTES = 10_000

    response = client_in.post(MY_PHOTOS, {"photos": upload("big.jpg", photo_bytes("rocket"))})

    assert response.status_code == 400
    assert "big.jpg is 109.9\xa0KB; the limit is 9.8\xa0KB." in " ".join(messages_of(response))
    assert stored_files(media_root) == []


def test_over_the_pixel_limit_is_refused(client_in, media_root, settings):
    settings.PHOTOS_MAX_PIXELS = 100_000

    response = client_in.post(MY_PHOTOS, {"photos": upload("wide.png", photo_bytes("astronaut"), "image/png")})

    assert "wide.png is 512×512 pixels (0.3 MP); the limit is 0.1 MP." in " ".join(messages_of(response))
    assert stored_files(media_root) == []


@pytest.mark.parametrize(("size", "refused"), [((79, 400), True), ((400, 60), True), ((80, 80), False)])
def test_images_under_80_pixels_a_side_are_refused_as_rekognition_would(client_in, media_root, size, refused):
    data = encode(Image.open(io.BytesIO(photo_bytes("rocket"))).convert("RGB").resize(size), "PNG")

    response = client_in.post(MY_PHOTOS, {"photos": upload("tiny.png", data, "image/png")})

    said = " ".join(messages_of(response))
    assert (f"tiny.png is {size[0]}×{size[1]} pixels; photos must be at least 80 pixels on each side." in said) is refused
    assert (stored_files(media_root) == []) is refused


def test_one_bad_file_does_not_lose_the_good_ones(client_in, media_root, django_capture_on_commit_callbacks):
    files = [upload("good.jpg", photo_bytes("rocket")), upload("bad.jpg", b"nope"), upload("good2.png", photo_bytes("coffee"), "image/png")]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(MY_PHOTOS, {"photos": files})

    assert response.status_code == 200
    assert sorted(Photo.objects.values_list("original_filename", flat=True)) == ["good.jpg", "good2.png"]
    assert any("bad.jpg is not an image" in m for m in messages_of(response))
    assert len(stored_files(media_root)) == 2


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("../../../etc/passwd.jpg", "passwd.jpg"),
        ("..\\..\\windows\\win.ini.jpg", "win.ini.jpg"),
        ("<script>alert(1)</script>.jpg", "script_.jpg"),
        ("null\x00byte.jpg", "nullbyte.jpg"),
        ("a" * 400 + ".jpg", "a" * 196 + ".jpg"),
    ],
)
def test_hostile_filenames_never_reach_storage_keys(client_in, media_root, hostile, shown, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(MY_PHOTOS, {"photos": upload(hostile, photo_bytes("rocket"))})

    photo = Photo.objects.get()
    assert photo.original_filename == shown
    assert photo.image.name == f"{photo.image.name.rsplit('/', 1)[0]}/{photo.uid}.jpg"
    assert all(p.startswith("uploads/") for p in stored_files(media_root))


def test_broker_down_keeps_the_upload_and_the_sweeper_enqueues_it_later(
    client_in, fake_queue, django_capture_on_commit_callbacks, settings
):
    from photos.services.photos import photos_sweep_stuck

    fake_queue.fail_with = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(MY_PHOTOS, {"photos": upload("a.jpg", photo_bytes("rocket"))})
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.status == Photo.Status.UPLOADED

    fake_queue.fail_with = None
    swept = photos_sweep_stuck(stuck_after_seconds=0, analyzing_after_seconds=600)

    assert swept == {"enqueued": 1, "failed": 0, "found": 1}
    assert ("photos.tasks.analyze_photo", (photo.id,)) in fake_queue.sent
    assert Photo.objects.get().status == Photo.Status.QUEUED


def test_my_photos_lists_only_my_photos(client_in, user):
    other = get_user_model().objects.create_user("mallory", password="x")
    Photo.objects.create(owner=user, image="uploads/x/mine.jpg", original_filename="mine.jpg")
    Photo.objects.create(owner=other, image="uploads/x/theirs.jpg", original_filename="theirs.jpg")

    page = client_in.get(MY_PHOTOS).content.decode()

    assert "mine.jpg" in page and "theirs.jpg" not in page


def test_status_json_reports_only_my_photos(client_in, user):
    other = get_user_model().objects.create_user("mallory", password="x")
    mine = Photo.objects.create(owner=user, image="uploads/x/mine.jpg", original_filename="mine.jpg", status="labeled")
    theirs = Photo.objects.create(owner=other, image="uploads/x/theirs.jpg", original_filename="theirs.jpg")

    data = client_in.get(reverse("photos:status"), {"ids": f"{mine.uid},{theirs.uid}"}).json()

    assert [p["id"] for p in data["photos"]] == [str(mine.uid)]
    assert data["photos"][0]["status"] == "labeled"
    assert client_in.get(reverse("photos:status"), {"ids": "not-a-uuid"}).status_code == 400


def test_image_view_checks_permission(client, user, media_root):
    from django.core.files.base import ContentFile

    other = get_user_model().objects.create_user("mallory", password="x")
    photo = Photo(owner=user, original_filename="a.jpg", content_type="image/jpeg")
    photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
    url = reverse("photos:image", args=[photo.uid])

    assert client.get(url).status_code == 404  # anonymous, private photo
    client.force_login(other)
    assert client.get(url).status_code == 404
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == photo_bytes("rocket")


def test_large_but_legal_pixel_count_header_is_refused_before_decoding(client_in, media_root, settings):
    # 8,000 x 8,000 is under Pillow's own bomb threshold: our limit catches it from the
    # header alone.
    settings.PHOTOS_MAX_PIXELS = 50_000_000

    response = client_in.post(MY_PHOTOS, {"photos": upload("big.png", _bomb_png(8_000), "image/png")})

    assert "big.png is 8000×8000 pixels (64 MP); the limit is 50 MP." in " ".join(messages_of(response))
    assert stored_files(media_root) == []


def test_the_same_photo_twice_is_reported_not_stored_twice(client_in, user, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(MY_PHOTOS, {"photos": upload("first.jpg", photo_bytes("rocket"))})
        response = client_in.post(MY_PHOTOS, {"photos": [upload("again.jpg", photo_bytes("rocket")),
                                                         upload("same-batch.jpg", photo_bytes("coffee"), "image/png"),
                                                         upload("same-batch-2.jpg", photo_bytes("coffee"), "image/png")]})

    text = " ".join(messages_of(response))
    assert "again.jpg is already in your photos (as first.jpg)." in text
    assert "same-batch-2.jpg is already in your photos (as same-batch.jpg)." in text
    assert sorted(Photo.objects.values_list("original_filename", flat=True)) == ["first.jpg", "same-batch.jpg"]
    assert len(stored_files(media_root)) == 2


def test_another_user_may_upload_the_same_photo(client, user, django_capture_on_commit_callbacks):
    other = get_user_model().objects.create_user("bob", password="x")
    for who in (user, other):
        client.force_login(who)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(MY_PHOTOS, {"photos": upload("r.jpg", photo_bytes("rocket"))})

    assert Photo.objects.count() == 2


def test_delete_removes_the_row_the_files_and_is_recorded(client_in, user, media_root, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile

    from photos.models import AuditEvent, Label

    photo = Photo(owner=user, original_filename="a.jpg", content_type="image/jpeg")
    photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
    photo.thumbnail.save("t.jpg", ContentFile(photo_bytes("rocket")))
    Label.objects.create(photo=photo, name="Rocket", confidence=90.0)
    assert len(stored_files(media_root)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(f"/photos/{photo.uid}/erase/")

    assert response.status_code == 302
    assert not Photo.objects.exists() and not Label.objects.exists()
    assert stored_files(media_root) == []
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.note) == ("delete", user, "a.jpg")


def test_nobody_deletes_someone_elses_photo(client, user, media_root):
    from django.core.files.base import ContentFile

    photo = Photo(owner=user, original_filename="a.jpg")
    photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
    client.force_login(get_user_model().objects.create_user("mallory", password="x"))

    for route in ("erase", "delete"):  # for good, or to the trash: neither, and no confirmation page either
        assert client.post(f"/photos/{photo.uid}/{route}/").status_code == 404
        assert client.get(f"/photos/{photo.uid}/{route}/").status_code == 404
    assert Photo.objects.filter(pk=photo.pk).exists()


@pytest.mark.parametrize("payload", [
    b"<script>alert(document.cookie)</script>",
    b"<html><body onload=alert(1)>",
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"<?php system($_GET['c']); ?>",
    b'<img src=x onerror="fetch(\'//evil\')">',
    b'<IMG SRC=x OnError=alert(1)>',
    b'<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    b"<details open ontoggle=alert(1)>",  # missed before issue 19
])
@pytest.mark.parametrize("where", ["comment", "appended"])
def test_polyglot_images_are_refused(client_in, media_root, payload, where):
    if where == "comment":
        data = encode(Image.open(io.BytesIO(photo_bytes("rocket"))), "JPEG", comment=payload)
    else:
        data = photo_bytes("rocket") + payload  # a valid JPEG with markup after its end
    assert Image.open(io.BytesIO(data)).format == "JPEG"

    response = client_in.post(MY_PHOTOS, {"photos": upload("cute.jpg", data)})

    assert "cute.jpg contains web page or script content" in " ".join(messages_of(response))
    assert stored_files(media_root) == []


@pytest.mark.parametrize("payload", [b'<img src=x ' + b"a" * 200 + b' onerror="alert(1)">', b"<script>alert(1)</script>"])
def test_markup_across_a_chunk_boundary_is_still_found(client_in, media_root, payload):
    """Uploads are read in 64 KiB chunks; markup placed across a boundary was missed
    when it was longer than the 32 bytes the chunks overlapped (issue 19, finding 3)."""
    from django.core.files.uploadedfile import InMemoryUploadedFile

    jpeg = photo_bytes("rocket")
    chunk = InMemoryUploadedFile.DEFAULT_CHUNK_SIZE
    boundary = (len(jpeg) // chunk + 1) * chunk
    at = boundary - len(payload) // 2  # the boundary falls in the middle of the markup
    data = jpeg + b"\x00" * (at - len(jpeg)) + payload
    assert data[boundary - 1 : boundary + 1] == payload[len(payload) // 2 - 1 : len(payload) // 2 + 1]

    response = client_in.post(MY_PHOTOS, {"photos": upload("cute.jpg", data)})

    assert "cute.jpg contains web page or script content" in " ".join(messages_of(response))
    assert stored_files(media_root) == []


def test_a_duplicate_is_refused_before_its_pixels_are_decoded(client_in, monkeypatch, fake_queue):
    """A 97 KB PNG of 50 megapixels cost seconds of CPU decoding before the duplicate
    check refused it (issue 19, finding 3): the duplicate check now comes first."""
    from photos.services import uploads as uploads_service

    client_in.post(MY_PHOTOS, {"photos": upload("a.png", photo_bytes("astronaut"), "image/png")})
    decoded = []
    real = uploads_service.finish_upload
    monkeypatch.setattr(uploads_service, "finish_upload", lambda probed: decoded.append(probed) or real(probed))

    response = client_in.post(MY_PHOTOS, {"photos": upload("again.png", photo_bytes("astronaut"), "image/png")})

    assert "again.png is already in your photos (as a.png)." in " ".join(messages_of(response))
    assert decoded == []


def test_real_sample_photos_are_not_mistaken_for_polyglots(client_in, django_capture_on_commit_callbacks):
    from tests.samples import PHOTOS

    names = sorted(PHOTOS)
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(MY_PHOTOS, {"photos": [upload(f"{n}.{PHOTOS[n].suffix[1:]}", PHOTOS[n].read_bytes()) for n in names]})

    assert Photo.objects.count() == len(names)


def test_my_photos_shows_moderation_state_to_the_owner(client_in, user):
    Photo.objects.create(owner=user, image="uploads/x/flagged.jpg", original_filename="flagged.jpg", moderation_state="flagged")
    removed = Photo.objects.create(owner=user, image="uploads/x/removed.jpg", original_filename="removed.jpg",
                                   moderation_state="removed", thumbnail="thumbnails/removed.jpg")

    page = client_in.get(MY_PHOTOS).content.decode()

    assert "Hidden from the gallery while moderators review it" in page
    assert "Removed by a moderator" in page
    # Its owner still sees it (through the permission-checked URL, never the storage name).
    assert f"/photos/{removed.uid}/thumbnail/" in page and "thumbnails/removed" not in page



def test_a_storage_failure_is_a_message_for_that_file_and_nothing_is_half_stored(client_in, user, media_root, monkeypatch):
    """A full disk or a refused bucket during the upload was a 500, form and API alike
    (issue 19, finding 3); the other files of the batch still go in."""
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage._save

    def failing_save(self, name, content):
        if "broken" in (getattr(content, "name", "") or ""):  # the client's file name, as the server received it
            raise OSError(28, "No space left on device")
        return real_save(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", failing_save)
    broken = upload("broken.jpg", photo_bytes("rocket"))
    good = upload("good.png", photo_bytes("astronaut"), "image/png")

    response = client_in.post(MY_PHOTOS, {"photos": [broken, good]})
    assert "broken.jpg could not be stored: the storage refused it; try again later. It was not stored." in messages_of(response)
    assert list(Photo.objects.values_list("original_filename", flat=True)) == ["good.png"]
    assert stored_files(media_root) == [Photo.objects.get().image.name]

    again = upload("broken.jpg", photo_bytes("rocket"))
    api = client_in.post("/api/photos/", {"photos": [again]}, HTTP_X_CSRFTOKEN="x")
    assert api.status_code == 400
    assert api.json()["rejected"] == [{"filename": "broken.jpg",
                                       "error": "broken.jpg could not be stored: the storage refused it; try again later."}]
