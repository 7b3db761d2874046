"""No EXIF or GPS bytes to anyone but the photo's owner (issue #10, finding 5): public
pages, other users and staff get a rendition without EXIF, XMP or IPTC; the owner (and
superusers) get the original file."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from PIL import Image

from photos.models import Photo
from photos.roles import roles_ensure
from tests.samples import PHOTOS

pytestmark = pytest.mark.django_db

SECRETS = (b"Exif", b"GPS", b"Canon", b"Jane Artist", b"SERIAL-0042", b"http://ns.adobe.com/xap/1.0/")


def photo_with_gps() -> bytes:
    img = Image.open(PHOTOS["chelsea"]).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x013B] = "Jane Artist"  # Artist
    exif[0xA431] = "SERIAL-0042"  # BodySerialNumber
    exif[0x0112] = 6  # Orientation: rotate
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/"/></x:xmpmeta>'
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, xmp=xmp, quality=90)
    return buf.getvalue()


@pytest.fixture
def photo(client):
    owner = get_user_model().objects.create_user("owner", password="x")
    client.force_login(owner)
    data = photo_with_gps()
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.post("/photos/", {"photos": [SimpleUploadedFile("holiday.jpg", data, content_type="image/jpeg")], "public": "on"})
    photo = Photo.objects.get(owner=owner)
    Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.LABELED)
    client.logout()
    photo.refresh_from_db()
    return photo, data


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_clean(data: bytes):
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert not img.getexif(), "EXIF survived"
    assert "xmp" not in img.info and "XML:com.adobe.xmp" not in img.info
    for secret in SECRETS:
        assert secret not in data, secret
    # Orientation was applied, not dropped: chelsea is 451 x 300, rotated by EXIF.
    assert img.size[1] > img.size[0]


def user(name, group=None, **extra):
    roles_ensure()
    u = get_user_model().objects.create_user(name, password="x", is_staff=group is not None, **extra)
    if group:
        u.groups.add(Group.objects.get(name=group))
    return u


@pytest.mark.parametrize("who", ["anonymous", "stranger", "Editors", "Moderators"])
def test_everyone_but_the_owner_gets_the_image_without_exif(client, photo, who):
    photo, _ = photo
    if who == "stranger":
        client.force_login(user("stranger"))
    elif who != "anonymous":
        client.force_login(user(who.lower(), who))

    response = client.get(f"/photos/{photo.uid}/image/")

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert_clean(body(response))


def test_the_public_photo_page_embeds_the_clean_image(client, photo):
    photo, _ = photo

    page = client.get(f"/gallery/{photo.uid}/").content.decode()

    assert f"/photos/{photo.uid}/image/" in page
    assert_clean(body(client.get(f"/photos/{photo.uid}/image/")))
    assert_clean(body(client.get(f"/photos/{photo.uid}/thumbnail/")) if photo.thumbnail else photo_thumbnail_bytes(photo))


def photo_thumbnail_bytes(photo):
    from photos.renditions import photo_make_thumbnail

    name = photo_make_thumbnail(photo_id=photo.pk)
    with default_storage.open(name, "rb") as f:
        return f.read()


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_the_owner_gets_the_original(client, photo, who):
    photo, original = photo
    client.force_login(photo.owner if who == "owner" else user("root", is_superuser=True))

    assert body(client.get(f"/photos/{photo.uid}/image/")) == original


def test_deleting_the_photo_removes_its_rendition(client, photo, django_capture_on_commit_callbacks):
    photo, _ = photo
    client.get(f"/photos/{photo.uid}/image/")
    rendition = f"renditions/{photo.uid}.jpg"
    assert default_storage.exists(rendition)
    client.force_login(photo.owner)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/photos/{photo.uid}/erase/")

    assert not default_storage.exists(rendition)


def test_no_comment_or_text_chunk_reaches_the_rendition_or_thumbnail(client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import PngImagePlugin

    owner = get_user_model().objects.create_user("owner2", password="x")
    client.force_login(owner)
    img = Image.open(PHOTOS["chelsea"]).convert("RGB")
    jpeg, png = io.BytesIO(), io.BytesIO()
    img.save(jpeg, "JPEG", comment=b"COMLEAK GPS 48.85N 2.29E")
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "PNGLEAK home address")
    img.rotate(90, expand=True).save(png, "PNG", pnginfo=info)
    client.post("/photos/", {"photos": [SimpleUploadedFile("a.jpg", jpeg.getvalue()), SimpleUploadedFile("b.png", png.getvalue())],
                             "public": "on"})
    client.logout()
    from photos.renditions import photo_make_thumbnail

    for photo in Photo.objects.filter(owner=owner):
        Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.LABELED)
        data = body(client.get(f"/photos/{photo.uid}/image/"))
        with default_storage.open(photo_make_thumbnail(photo_id=photo.pk), "rb") as f:
            thumbnail = f.read()
        for leaked in (b"COMLEAK", b"PNGLEAK"):
            assert leaked not in data and leaked not in thumbnail


def test_the_admin_photo_page_links_no_storage_url(client, settings):
    """On S3 the file field's link is a presigned URL of the original: staff get names."""
    photo = Photo.objects.create(image="uploads/x/secret.jpg", original_filename="secret.jpg", thumbnail="thumbnails/x/t.jpg")
    client.force_login(user("editor", "Editors"))

    page = client.get(f"/admin/photos/photo/{photo.pk}/change/").content.decode()

    assert "uploads/x/secret.jpg" in page and "/media/uploads/x/secret.jpg" not in page
    assert 'href="/media/' not in page


def test_staff_without_the_view_permission_sees_no_private_photo(client, photo):
    photo, _ = photo
    Photo.objects.filter(pk=photo.pk).update(visibility="private")
    client.force_login(get_user_model().objects.create_user("staffonly", password="x", is_staff=True))

    assert client.get(f"/photos/{photo.uid}/image/").status_code == 404
