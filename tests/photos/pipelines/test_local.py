"""Tasks, run in-process on real photos and the real local detector."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from photos.pipelines import local
from photos.pipelines.local import TransientAnalysisError, analyze_photo
from photos.renditions import make_thumbnail
from photos.services.photos import photos_sweep_stuck
from photos.pipelines.local import MAX_ANALYSIS_ATTEMPTS
from photos.models import Label, Photo
from tests.samples import PHOTOS, encode, photo_bytes

pytestmark = pytest.mark.django_db


def stored_photo(data: bytes, name: str = "a.jpg", **fields) -> Photo:
    owner = get_user_model().objects.create_user(f"u{Photo.objects.count()}", password="x")
    photo = Photo(owner=owner, original_filename=name, size=len(data), **{"status": Photo.Status.QUEUED, **fields})
    photo.image.save(name, ContentFile(data))
    return photo


def test_analyze_photo_labels_a_real_photo():
    photo = stored_photo(photo_bytes("grace_hopper"))

    assert analyze_photo.run(photo.id) == "applied"

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED
    assert photo.engine == "local"
    face = Label.objects.get(photo=photo, name="Face")
    assert face.confidence > 60 and len(face.instances) == 1


def test_analyze_photo_is_idempotent():
    photo = stored_photo(photo_bytes("astronaut"), "a.png")
    analyze_photo.run(photo.id)

    assert analyze_photo.run(photo.id) == "skipped"
    assert Photo.objects.get(pk=photo.pk).analysis_attempts == 1


def test_missing_photo_is_logged_and_left():
    assert analyze_photo.run(999_999) == "skipped"


def test_webp_is_analysed_through_a_jpeg_rendition():
    data = encode(Image.open(PHOTOS["grace_hopper"]), "WEBP", quality=90)
    photo = stored_photo(data, "a.webp")

    analyze_photo.run(photo.id)

    assert Label.objects.filter(photo=photo, name="Face").exists()


def test_a_wide_photo_within_every_upload_limit_is_analysed_through_a_rendition():
    """12,000 x 2,400 px (29 MP, under the 50 MP limit): over the detector's 10,000 px a
    side, which only its answer says. It used to end FAILED, never labelled, never public;
    like the Lambda, the worker now tries once more with an analysis rendition."""
    wide = Image.new("RGB", (12_000, 2_400), (235, 235, 235))
    wide.paste(Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((2_000, 2_344)), (5_000, 28))
    photo = stored_photo(encode(wide, "JPEG", quality=85), "panorama.jpg")

    analyze_photo.run(photo.id)

    photo.refresh_from_db()
    assert (photo.status, photo.status_reason) == (Photo.Status.LABELED, "")
    assert Label.objects.get(photo=photo, name="Person").confidence > 70  # the woman in the middle of it


def test_image_missing_from_storage_fails_with_the_reason():
    photo = stored_photo(photo_bytes("rocket"))
    photo.image.storage.delete(photo.image.name)

    analyze_photo.run(photo.id)

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert photo.status_reason.startswith("InvalidS3ObjectException")


def test_transient_errors_are_retried(monkeypatch):
    photo = stored_photo(photo_bytes("rocket"))

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DetectLabels")

    monkeypatch.setattr(local, "photo_analyze", throttled)

    # Called directly, Celery's autoretry re-raises instead of scheduling the retry.
    with pytest.raises(TransientAnalysisError):
        analyze_photo.run(photo.id)
    assert analyze_photo.autoretry_for == (TransientAnalysisError,)
    assert analyze_photo.max_retries == 5 and analyze_photo.retry_backoff


def test_permanent_errors_fail_the_photo_without_retry(monkeypatch):
    photo = stored_photo(photo_bytes("rocket"))

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DetectLabels")

    monkeypatch.setattr(local, "photo_analyze", denied)

    assert analyze_photo.run(photo.id) == "failed"
    assert Photo.objects.get(pk=photo.pk).status == Photo.Status.FAILED


def _phone_photo() -> bytes:
    """A JPEG stored sideways with EXIF orientation 6 and a GPS position, like a phone's."""
    img = Image.open(PHOTOS["grace_hopper"]).transpose(Image.Transpose.ROTATE_90)  # 600 wide, 512 high
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return encode(img, exif=exif.tobytes())


def test_thumbnail_applies_orientation_and_strips_exif_and_gps():
    photo = stored_photo(_phone_photo())
    assert Image.open(io.BytesIO(photo_bytes_of(photo))).getexif().get_ifd(0x8825)  # the original has GPS

    name = make_thumbnail.run(photo.id)

    photo.refresh_from_db()
    assert photo.thumbnail.name == name == f"thumbnails/{photo.uid}.jpg"
    thumb = Image.open(photo.thumbnail.open("rb"))
    assert thumb.size == (512, 600)  # upright: portrait, as the camera meant it
    assert dict(thumb.getexif()) == {}
    assert "exif" not in thumb.info


def photo_bytes_of(photo: Photo) -> bytes:
    with photo.image.open("rb") as handle:
        return handle.read()


def test_thumbnail_is_replaced_not_duplicated():
    photo = stored_photo(photo_bytes("rocket"))

    make_thumbnail.run(photo.id)
    make_thumbnail.run(photo.id)

    photo.refresh_from_db()
    assert photo.thumbnail.name == f"thumbnails/{photo.uid}.jpg"


def test_sweeper_gives_up_after_max_attempts(fake_queue):
    photo = stored_photo(photo_bytes("rocket"))
    Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.ANALYZING, analysis_attempts=MAX_ANALYSIS_ATTEMPTS)

    result = photos_sweep_stuck(stuck_after_seconds=0, analyzing_after_seconds=0)

    assert result == {"enqueued": 0, "failed": 1, "found": 1}
    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED and "Gave up" in photo.status_reason


def test_sweeper_leaves_recent_and_finished_photos_alone(fake_queue):
    stored_photo(photo_bytes("rocket"))  # queued just now
    done = stored_photo(photo_bytes("rocket"))
    Photo.objects.filter(pk=done.pk).update(status=Photo.Status.LABELED)

    assert photos_sweep_stuck(stuck_after_seconds=3600, analyzing_after_seconds=3600)["found"] == 0
    assert fake_queue.sent == []


def test_a_photo_left_analyzing_by_a_killed_worker_is_picked_up_within_minutes(fake_queue):
    """No analysis outlives its hard time limit, so 'analyzing' past it means the worker
    died: the next sweep (every minute) takes the photo again, not ten minutes later."""
    from datetime import timedelta

    from django.utils import timezone

    from photos.pipelines.local import ANALYSIS_HARD_LIMIT
    from photos.tasks import sweep_stuck_photos

    photo = Photo.objects.create(image="uploads/k/killed.jpg", original_filename="killed.jpg", status=Photo.Status.ANALYZING,
                                 analysis_attempts=1)
    Photo.objects.filter(pk=photo.pk).update(updated_at=timezone.now() - timedelta(seconds=ANALYSIS_HARD_LIMIT + 60))

    result = sweep_stuck_photos()

    assert result["enqueued"] == 1
    assert "photos.tasks.analyze_photo" in fake_queue.task_names() or fake_queue.sent


def test_a_duplicate_delivery_while_another_worker_analyses_does_nothing():
    """A second delivery of the task claimed a photo already "analyzing", ran the whole
    analysis again and counted towards the give-up limit (issue 19, finding 3)."""
    photo = stored_photo(photo_bytes("rocket"), status=Photo.Status.ANALYZING)
    Photo.objects.filter(pk=photo.pk).update(analysis_attempts=1)

    assert analyze_photo.run(photo.id) == "skipped"

    photo.refresh_from_db()
    assert (photo.status, photo.analysis_attempts) == (Photo.Status.ANALYZING, 1)
    assert not Label.objects.filter(photo=photo).exists()


def test_a_claim_older_than_the_hard_limit_is_a_dead_worker_and_is_claimed_again():
    from datetime import timedelta

    from django.utils import timezone

    photo = stored_photo(photo_bytes("grace_hopper"), status=Photo.Status.ANALYZING)
    Photo.objects.filter(pk=photo.pk).update(updated_at=timezone.now() - timedelta(seconds=local.ANALYSIS_HARD_LIMIT + 60))

    assert analyze_photo.run(photo.id) == "applied"
