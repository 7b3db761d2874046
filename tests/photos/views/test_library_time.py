"""The library in time and in the owner's words: the date a photo was taken comes from its
EXIF (with the camera's UTC offset when the file says it, else the upload time, marked as
such), My photos opens on a timeline with month headings, the dimensions are those shown
(after EXIF rotation), and the owner's title and caption are kept on the record, shown and
searchable. Each used to be missing: titles came only from labels, no date taken, no
month headings, 576 x 768 for an upright 768 x 576 photo."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from photos.models import AuditEvent, Photo
from photos.services.photos import DescribeError, photo_describe
from tests.records import analysed_photo
from tests.samples import PHOTOS, encode

pytestmark = pytest.mark.django_db


def exif(*, taken: str | None = None, offset: str | None = None, orientation: int | None = None) -> bytes:
    tags = Image.Exif()
    if orientation:
        tags[0x0112] = orientation
    sub = tags.get_ifd(0x8769)
    if taken is not None:
        sub[0x9003] = taken
    if offset is not None:
        sub[0x9011] = offset
    return tags.tobytes()


def jpeg(**tags) -> bytes:
    img = Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((576, 768))
    return encode(img, "JPEG", quality=85, exif=exif(**tags))


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("timeline", password="pw-timeline-1")


def upload(client, owner, name: str, data: bytes) -> Photo:
    client.force_login(owner)
    client.post("/photos/", {"photos": SimpleUploadedFile(name, data, content_type="image/jpeg")})
    return Photo.objects.get(owner=owner, original_filename=name)


def test_the_date_taken_is_read_from_exif_with_the_cameras_offset(client, owner, fake_queue):
    photo = upload(client, owner, "a.jpg", jpeg(taken="2024:05:17 14:03:22", offset="+02:00"))

    assert photo.taken_from == Photo.TakenFrom.CAMERA
    assert photo.taken_local == datetime(2024, 5, 17, 14, 3, 22)  # the camera's wall clock, not shifted
    assert photo.taken_offset == 120
    page = client.get(f"/photos/{photo.uid}/").content.decode()
    assert "17 May 2024, 14:03" in page and "UTC+02:00" in page


def test_a_file_without_a_date_is_listed_by_its_upload_time_and_says_so(client, owner, fake_queue):
    before = timezone.now()
    photo = upload(client, owner, "nodate.jpg", jpeg())
    zeroed = upload(client, owner, "zeroed.jpg", jpeg(taken="0000:00:00 00:00:00"))
    nonsense = upload(client, owner, "month13.jpg", jpeg(taken="2024:13:40 99:00:00", offset="+99:00"))

    for p in (photo, zeroed, nonsense):
        assert p.taken_from == Photo.TakenFrom.UPLOAD and p.taken_offset is None
        assert before <= p.taken_at <= timezone.now()
    assert "The file has no date: listed by its upload time" in client.get(f"/photos/{photo.uid}/").content.decode()


def test_the_dimensions_are_the_ones_shown_after_exif_rotation(client, owner, fake_queue):
    """Stored 576 wide and 768 high, with orientation 6 (turn a quarter to show): the
    photo is 768 x 576 as anyone sees it."""
    photo = upload(client, owner, "turned.jpg", jpeg(orientation=6))

    assert (photo.width, photo.height) == (768, 576)
    assert "768 × 576 px" in client.get(f"/photos/{photo.uid}/").content.decode()


def dated(owner, name: str, taken: datetime, uploaded: datetime, **fields) -> Photo:
    photo = analysed_photo(name, {"Dog": (95.0, ["Animal"])}, owner=owner, **fields)
    Photo.objects.filter(pk=photo.pk).update(taken_at=taken, taken_from=Photo.TakenFrom.CAMERA, created_at=uploaded)
    return Photo.objects.get(pk=photo.pk)


def listing(html: str) -> list[str]:
    """Month headings and photo names, in page order."""
    return [m[0] or m[1] for m in re.findall(r'<li class="month"><h2>([^<]+)</h2>|class="filename" href="[^"]+">([^<]+)<', html)]


def test_my_photos_opens_on_a_timeline_by_date_taken_with_month_headings(client, owner):
    utc = dt_timezone.utc
    dated(owner, "beach.jpg", datetime(2023, 8, 2, 10, tzinfo=utc), datetime(2025, 6, 30, tzinfo=utc))
    dated(owner, "snow.jpg", datetime(2024, 1, 20, 9, tzinfo=utc), datetime(2025, 7, 1, tzinfo=utc))
    dated(owner, "party.jpg", datetime(2024, 1, 1, 0, 30, tzinfo=utc), datetime(2025, 7, 2, tzinfo=utc))
    client.force_login(owner)

    assert listing(client.get("/photos/").content.decode()) == [
        "January 2024", "snow.jpg", "party.jpg", "August 2023", "beach.jpg"]
    assert listing(client.get("/photos/", {"sort": "newest"}).content.decode()) == [
        "July 2025", "party.jpg", "snow.jpg", "June 2025", "beach.jpg"]  # by upload: the upload months
    assert listing(client.get("/photos/", {"q": "Dog", "sort": "taken"}).content.decode()) == [
        "January 2024", "snow.jpg", "party.jpg", "August 2023", "beach.jpg"]
    gallery = client.get("/gallery/", {"sort": "taken"}).content.decode()
    assert re.findall(r'<li class="month"><h2>([^<]+)</h2>', gallery) == ["January 2024", "August 2023"]


def test_the_api_sorts_by_date_taken_and_tells_the_time_only_to_the_owner(client, owner):
    utc = dt_timezone.utc
    old = dated(owner, "old.jpg", datetime(2019, 3, 4, 5, 6, 7, tzinfo=utc), timezone.now())
    dated(owner, "new.jpg", datetime(2024, 3, 4, tzinfo=utc), timezone.now() - timedelta(days=1))

    results = client.get("/api/photos/", {"sort": "taken"}).json()["results"]
    assert [r["taken_month"] for r in results] == ["2024-03", "2019-03"]
    assert {r["taken_at"] for r in results} == {None}  # a visitor: the month, as the gallery shows
    client.force_login(owner)
    mine = client.get(f"/api/photos/{old.uid}/").json()
    assert (mine["taken_at"], mine["taken_from"]) == ("2019-03-04T05:06:07", "camera")


def test_the_owner_titles_and_captions_a_photo_on_the_record(client, owner):
    photo = analysed_photo("IMG_0042.jpg", {"Face": (97.0, ["Person"])}, owner=owner)
    client.force_login(owner)

    client.post(f"/photos/{photo.uid}/describe/", {"title": "  Grace\x00 at the\u202e office ",
                                                   "caption": "First compiler,\r\n\r\nHarvard 1952"})

    photo.refresh_from_db()
    assert (photo.title, photo.caption) == ("Grace at the office", "First compiler,\n\nHarvard 1952")
    event = AuditEvent.objects.get(photo=photo, action=AuditEvent.Action.DESCRIBE)
    assert (event.actor, event.before, event.after["title"]) == (owner, {"title": "", "caption": ""}, "Grace at the office")
    assert "<h1>Grace at the office</h1>" in client.get(f"/gallery/{photo.uid}/").content.decode()
    assert client.get(f"/api/photos/{photo.uid}/").json()["caption"] == "First compiler,\n\nHarvard 1952"
    # Emptied: the machine title is back.
    client.post(f"/photos/{photo.uid}/describe/", {"title": "", "caption": ""})
    assert "<h1>Face</h1>" in client.get(f"/gallery/{photo.uid}/").content.decode()


def test_titles_and_captions_are_searched_in_the_library_the_gallery_and_the_api(client, owner):
    private = analysed_photo("a.jpg", {"Dog": (95.0, ["Animal"])}, owner=owner, visibility="private")
    public = analysed_photo("b.jpg", {"Cat": (95.0, ["Animal"])}, owner=owner)
    photo_describe(photo_id=private.id, actor=owner, title="Rex", caption="Our first holiday in Lisbon")
    photo_describe(photo_id=public.id, actor=owner, title="Lisbon cat", caption="")
    client.force_login(owner)

    names = re.findall(r'class="filename" href="[^"]+">([^<]+)<', client.get("/photos/", {"q": "lisbon"}).content.decode())
    assert sorted(names) == ["Lisbon cat", "Rex"]
    assert [r["title"] for r in client.get("/api/photos/", {"owner": "me", "q": "holiday Lisbon"}).json()["results"]] == ["Rex"]
    client.logout()
    assert [r["title"] for r in client.get("/api/photos/", {"q": "Lisbon"}).json()["results"]] == ["Lisbon cat"]
    assert "Lisbon cat" in client.get("/gallery/", {"q": "lisbon"}).content.decode()


def test_only_the_owner_describes_and_not_from_the_trash_and_nothing_too_long(owner):
    other = get_user_model().objects.create_user("other", password="x")
    photo = analysed_photo("p.jpg", {"Dog": (95.0, [])}, owner=owner)

    assert photo_describe(photo_id=photo.id, actor=other, title="Mine now", caption="") is None
    with pytest.raises(DescribeError, match="at most 200 characters; this one has 201"):
        photo_describe(photo_id=photo.id, actor=owner, title="x" * 201, caption="")
    with pytest.raises(DescribeError, match="at most 2000 characters"):
        photo_describe(photo_id=photo.id, actor=owner, title="", caption="y" * 2001)
    Photo.objects.filter(pk=photo.pk).update(trashed_at=timezone.now())
    assert photo_describe(photo_id=photo.id, actor=owner, title="From the bin", caption="") is None

    assert Photo.objects.get(pk=photo.pk).title == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DESCRIBE).exists()


def test_the_owners_words_leave_the_record_when_the_photo_is_deleted_for_good(owner, media_root):
    """The audit entry of a title change kept the title and caption after "Delete for
    good": the owner's own words (names, places) outlived the photo."""
    from photos.services.erasure import photo_delete

    photo = analysed_photo("p.jpg", {"Dog": (95.0, [])}, owner=owner)
    photo_describe(photo_id=photo.id, actor=owner, title="Grandma's house, 12 Elm Street", caption="Anna, 1998")

    assert photo_delete(photo_id=photo.id, actor=owner)

    event = AuditEvent.objects.get(action=AuditEvent.Action.DESCRIBE)
    assert (event.before, event.after, event.note) == ({}, {}, "erased with the photo")
    assert "Elm Street" not in str(list(AuditEvent.objects.values_list("before", "after", "note")))
