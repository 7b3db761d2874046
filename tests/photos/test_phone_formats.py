"""What a phone makes: HEIC (the iPhone's default), AVIF and MPO (a JPEG holding a second
picture) are accepted, stored as uploaded, shown through the JPEG rendition, analysed by
the local detector through the Lambda's rendition function, and refused or deduplicated
exactly as JPEGs are. Each used to be refused ("is not an image we can read", "is a MPO
image")."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from photos.models import Label, Photo
from photos.pipelines.local import analyze_photo
from photos.renditions import photo_make_thumbnail
from photos.services import uploads
from photos.services.uploads import DirectUploadError, direct_upload_start
from tests.samples import PHOTOS, encode, heic, mpo

pytestmark = pytest.mark.django_db

MY_PHOTOS = "/photos/"


def hopper() -> Image.Image:
    return Image.open(PHOTOS["grace_hopper"]).convert("RGB")


FORMATS = {
    # name, bytes, stored extension, content type
    "heic": lambda: ("IMG_0001.HEIC", heic(hopper()), "heic", "image/heic"),
    "avif": lambda: ("pixel.avif", encode(hopper(), "AVIF", quality=80), "avif", "image/avif"),
    "mpo": lambda: ("DSC_0001.JPG", mpo(hopper(), hopper().rotate(90, expand=True)), "jpg", "image/jpeg"),
}


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("phone", password="pw-phone-123")


@pytest.fixture
def client_in(client, owner):
    client.force_login(owner)
    return client


def upload(client, name: str, data: bytes, content_type: str = ""):
    return client.post(MY_PHOTOS, {"photos": SimpleUploadedFile(name, data, content_type=content_type)}, follow=True)


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_a_phone_photo_is_stored_as_uploaded_shown_as_jpeg_and_labelled(kind, client_in, owner, media_root, fake_queue):
    name, data, extension, content_type = FORMATS[kind]()

    response = upload(client_in, name, data)

    assert response.status_code == 200
    photo = Photo.objects.get(owner=owner)
    assert photo.image.name.endswith(f"{photo.uid}.{extension}")
    assert (photo.content_type, photo.original_filename, photo.size) == (content_type, name, len(data))
    assert (photo.width, photo.height) == (512, 600)
    assert (media_root / photo.image.name).read_bytes() == data  # stored as uploaded
    # Thumbnail and display rendition: upright JPEGs any browser shows.
    thumbnail = photo_make_thumbnail(photo_id=photo.id)
    assert Image.open(media_root / thumbnail).format == "JPEG"
    shown = client_in.get(f"/photos/{photo.uid}/display/")
    assert shown["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(shown.streaming_content))).size == (512, 600)
    # The owner's download is the file as uploaded.
    original = client_in.get(f"/photos/{photo.uid}/image/?download=1")
    assert (original["Content-Type"], b"".join(original.streaming_content)) == (content_type, data)
    # Analysed locally: the same detector, through the Lambda's rendition for HEIC/AVIF.
    assert analyze_photo.run(photo.id) == "applied"
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED
    assert Label.objects.filter(photo=photo, name="Person").exists()


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_a_phone_photo_uploaded_twice_is_refused_the_second_time(kind, client_in, owner, fake_queue):
    name, data, _, _ = FORMATS[kind]()
    upload(client_in, name, data)

    response = upload(client_in, f"again-{name}", data)

    assert Photo.objects.filter(owner=owner).count() == 1
    assert any("is already in your photos" in str(m) for m in response.context["messages"])


def test_the_limits_apply_to_heic_as_to_jpeg(client_in, owner, settings, fake_queue):
    truncated = upload(client_in, "cut.heic", heic(hopper())[:4000])
    tiny = upload(client_in, "tiny.heic", heic(hopper().resize((64, 75))))
    settings.PHOTOS_MAX_PIXELS = 200_000
    response = upload(client_in, "big.heic", heic(hopper()))  # 512 x 600 = 307,200 px

    assert Photo.objects.count() == 0
    said = [str(m) for r in (response, tiny, truncated) for m in r.context["messages"]]
    assert any("big.heic is 512×600 pixels (0.3 MP); the limit is 0.2 MP" in m for m in said), said
    assert any("tiny.heic is 64×75 pixels" in m for m in said), said
    assert any(m.startswith("cut.heic") and ("truncated or corrupt" in m or "not an image we can read" in m)
               for m in said), said


def test_a_rotated_heic_is_upright_with_its_displayed_dimensions(client_in, owner, media_root, fake_queue):
    """An HEIC's rotation is in the container (irot); pi-heif applies it and sets the EXIF
    orientation to 1, so the photo is measured and shown upright and never turned twice."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    upload(client_in, "portrait.heic", heic(hopper(), exif=exif.tobytes()))

    photo = Photo.objects.get(owner=owner)
    assert (photo.width, photo.height) == (600, 512)
    thumbnail = Image.open(media_root / photo_make_thumbnail(photo_id=photo.id))
    assert thumbnail.size == (600, 512)


def test_a_direct_upload_of_a_heic_the_browser_left_untyped_is_named_for_its_suffix(owner, settings, monkeypatch):
    """Chromium and Firefox outside Apple's systems give a .heic file an empty type."""
    settings.PHOTOS_MAX_UPLOAD_BYTES = 10_000_000

    class Storage:
        def presigned_post(self, *, key, content_type, **kwargs):
            self.key, self.content_type = key, content_type
            return {"url": "https://bucket.example", "fields": {"Content-Type": content_type}}

        def multipart_start(self, name, *, content_type):
            self.video_key, self.video_type = name, content_type
            return "upload-1"

    storage = Storage()
    monkeypatch.setattr(uploads, "media_storage", lambda: storage)

    direct_upload_start(owner=owner, filename="IMG_0002.HEIC", content_type="", size=2_000_000)
    video = direct_upload_start(owner=owner, filename="clip.mov", content_type="", size=2_000_000)
    with pytest.raises(DirectUploadError, match="Upload JPEG, PNG, WebP, HEIC or AVIF photos or MP4, MOV or WebM videos"):
        direct_upload_start(owner=owner, filename="clip.gif", content_type="", size=2_000_000)

    assert storage.content_type == "image/heic" and storage.key.endswith(".heic")
    assert storage.video_type == "video/quicktime" and storage.video_key.endswith(".mov") and "multipart" in video
