"""apply_records through every curation rule in DESIGN.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from infra.functions.labeler.record import (
    AnalysisError,
    Box,
    Instance,
    Label as RecordLabel,
    LabelRecord,
    ModerationLabel as RecordModeration,
    TextDetection,
)
from photos.models import AnalysisRecord, DetectedText, Label, ModerationLabel, Photo
from photos.apply import apply_records

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


def stamp(minutes: int = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(key="uploads/2026/11/a.jpg", minutes=0, labels=None, moderation=(), text=(), status="LABELED", error=None):
    if labels is None:
        labels = {"Dog": 95.0, "Animal": 95.0, "Grass": 60.0}
    return LabelRecord(
        bucket="media", key=key, etag='"e"', size=1000, status=status, engine="local", error=error,
        labels=tuple(
            RecordLabel(name=n, confidence=c, parents=("Animal",) if n == "Dog" else (),
                        instances=(Instance(Box(0.1, 0.1, 0.5, 0.5), c),) if n == "Dog" else ())
            for n, c in labels.items()
        ),
        moderation_labels=tuple(RecordModeration(name=n, confidence=c, parent=p, level=2 if p else 1) for n, c, p in moderation),
        text=tuple(text),
        model_versions={"labels": "local:1"},
        analyzed_at=stamp(minutes), updated_at=stamp(minutes),
    )


@pytest.fixture
def photo(db):
    owner = get_user_model().objects.create_user("owner", password="x")
    return Photo.objects.create(owner=owner, image="uploads/2026/11/a.jpg", original_filename="a.jpg", status=Photo.Status.ANALYZING)


@pytest.fixture
def editor(db):
    return get_user_model().objects.create_user("editor", password="x", is_staff=True)


def labels_of(photo):
    return {lb.name: lb for lb in Label.objects.filter(photo=photo)}


def test_first_record_creates_pending_machine_labels_and_everything_else(photo):
    text = (TextDetection(text="STOP", type="LINE", confidence=99.0, box=Box(0.1, 0.1, 0.2, 0.1)),)

    result = apply_records([record(moderation=[("Swimwear or Underwear", 30.0, "")], text=text)])

    photo.refresh_from_db()
    assert (result.applied, result.stale, result.created_photos) == (1, 0, 0)
    assert photo.status == Photo.Status.LABELED
    assert photo.engine == "local" and photo.model_versions == {"labels": "local:1"}
    assert photo.analyzed_at == T0
    dog = labels_of(photo)["Dog"]
    assert (dog.source, dog.review_state, dog.confidence, dog.parents) == ("machine", "pending", 95.0, ["Animal"])
    assert dog.instances == [{"box": {"left": 0.1, "top": 0.1, "width": 0.5, "height": 0.5}, "confidence": 95.0}]
    assert list(ModerationLabel.objects.filter(photo=photo).values_list("name", flat=True)) == ["Swimwear or Underwear"]
    assert list(DetectedText.objects.filter(photo=photo).values_list("text", flat=True)) == ["STOP"]
    assert photo.moderation_state == Photo.Moderation.NONE  # 30 % is under the flag threshold
    assert AnalysisRecord.objects.get(photo=photo).payload["labels"][0]["name"] == "Dog"


def test_applying_the_same_record_twice_changes_nothing(photo):
    apply_records([record()])
    before = {n: (lb.id, lb.updated_at) for n, lb in labels_of(photo).items()}

    apply_records([record()])

    assert {n: (lb.id, lb.updated_at) for n, lb in labels_of(photo).items()} == before
    assert AnalysisRecord.objects.count() == 1


def test_review_state_and_reviewer_survive_reanalysis(photo, editor):
    apply_records([record()])
    Label.objects.filter(photo=photo, name="Dog").update(review_state="approved", reviewed_by=editor)

    apply_records([record(minutes=5, labels={"Dog": 80.0, "Animal": 90.0, "Grass": 60.0})])

    dog = labels_of(photo)["Dog"]
    assert (dog.review_state, dog.reviewed_by, dog.confidence) == ("approved", editor, 80.0)


def test_missing_pending_label_is_removed(photo):
    apply_records([record()])

    apply_records([record(minutes=5, labels={"Dog": 95.0, "Animal": 95.0})])

    assert "Grass" not in labels_of(photo)


def test_missing_approved_label_is_kept_and_marked(photo):
    apply_records([record()])
    Label.objects.filter(photo=photo, name="Grass").update(review_state="approved")

    apply_records([record(minutes=5, labels={"Dog": 95.0})])
    grass = labels_of(photo)["Grass"]
    assert (grass.review_state, grass.missing_from_latest) == ("approved", True)

    apply_records([record(minutes=10)])  # it comes back
    assert labels_of(photo)["Grass"].missing_from_latest is False


def test_rejected_label_never_comes_back_as_pending(photo):
    apply_records([record()])
    Label.objects.filter(photo=photo, name="Grass").update(review_state="rejected")

    apply_records([record(minutes=5, labels={"Dog": 95.0})])
    assert labels_of(photo)["Grass"].review_state == "rejected"

    apply_records([record(minutes=10, labels={"Dog": 95.0, "Grass": 70.0})])
    assert labels_of(photo)["Grass"].review_state == "rejected"


def test_editor_added_labels_are_never_touched(photo, editor):
    apply_records([record()])
    Label.objects.create(photo=photo, name="Golden Retriever", source="editor", review_state="approved", reviewed_by=editor)
    Label.objects.create(photo=photo, name="Lawn", source="editor", review_state="approved", confidence=None)

    apply_records([record(minutes=5, labels={"Dog": 95.0, "Lawn": 99.0})])

    labels = labels_of(photo)
    assert labels["Golden Retriever"].source == "editor"
    assert (labels["Lawn"].source, labels["Lawn"].confidence, labels["Lawn"].missing_from_latest) == ("editor", None, False)


def test_moderation_label_at_threshold_flags_the_photo(photo, settings):
    settings.MODERATION_FLAG_THRESHOLD = 80.0

    apply_records([record(moderation=[("Explicit Nudity", 80.0, "Explicit"), ("Explicit", 80.0, "")])])

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.FLAGGED
    assert photo.flagged_at is not None


def test_moderation_label_under_threshold_does_not_flag(photo, settings):
    settings.MODERATION_FLAG_THRESHOLD = 80.0

    apply_records([record(moderation=[("Explicit Nudity", 79.9, "Explicit")])])

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.NONE


def _clear(photo, seen):
    Photo.objects.filter(pk=photo.pk).update(moderation_state="cleared", cleared_moderation=seen)


def test_clearance_holds_through_reanalysis_with_the_same_labels(photo):
    apply_records([record(moderation=[("Swimwear or Underwear", 90.0, "")])])
    _clear(photo, {"Swimwear or Underwear": 90.0})

    apply_records([record(minutes=5, moderation=[("Swimwear or Underwear", 90.5, "")])])

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.CLEARED


@pytest.mark.parametrize(
    "moderation",
    [
        [("Swimwear or Underwear", 97.0, "")],  # stronger
        [("Swimwear or Underwear", 90.0, ""), ("Explicit Nudity", 85.0, "Explicit")],  # new
    ],
)
def test_clearance_yields_to_a_new_or_stronger_moderation_label(photo, moderation):
    apply_records([record(moderation=[("Swimwear or Underwear", 90.0, "")])])
    _clear(photo, {"Swimwear or Underwear": 90.0})

    apply_records([record(minutes=5, moderation=moderation)])

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.FLAGGED


def test_removed_photo_stays_removed(photo):
    Photo.objects.filter(pk=photo.pk).update(moderation_state="removed")

    apply_records([record(moderation=[("Explicit", 99.0, "")])])

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.REMOVED


def test_record_for_an_unknown_key_creates_the_photo(db):
    result = apply_records([record(key="uploads/direct/put.png")])

    photo = Photo.objects.get(image="uploads/direct/put.png")
    assert result.created_photos == 1
    assert (photo.owner, photo.original_filename, photo.status, photo.content_type) == (None, "put.png", "labeled", "image/png")
    assert "Dog" in labels_of(photo)


def test_a_video_put_outside_the_app_gets_its_stream_asked_for(db, fake_queue, django_capture_on_commit_callbacks):
    """Issue 22: a backfilled HEVC video's starter waits for the H.264 stream the app
    makes, and says so in a SKIPPED record. Applying it creates the video's row and asks
    the worker for the stream (once: the renditions sweep then leaves it a while)."""
    waiting = record(key="uploads/old/IMG_0001.mov", status="SKIPPED", labels={},
                     error=AnalysisError(code="WaitingForStream", message="Rekognition Video reads H.264 only"))
    with django_capture_on_commit_callbacks(execute=True):
        apply_records([waiting, record(key="uploads/old/b.jpg")])
    with django_capture_on_commit_callbacks(execute=True):
        apply_records([replace(waiting, updated_at=stamp(1))])

    video = Photo.objects.get(image="uploads/old/IMG_0001.mov")
    assert (video.kind, video.status, video.content_type) == ("video", "skipped", "video/quicktime")
    assert [sent for sent in fake_queue.sent if sent[0] == "photos.tasks.make_stream"] == [
        ("photos.tasks.make_stream", (video.id,))]


def test_older_record_arriving_late_is_ignored(photo):
    apply_records([record(minutes=10, labels={"Cat": 90.0})])

    result = apply_records([record(minutes=5, labels={"Dog": 90.0})])

    assert result.stale == 1
    assert set(labels_of(photo)) == {"Cat"}


def test_within_a_batch_the_newest_record_of_a_key_wins(photo):
    apply_records([record(minutes=10, labels={"Cat": 90.0}), record(minutes=5, labels={"Dog": 90.0})])

    assert set(labels_of(photo)) == {"Cat"}


def test_failed_record_sets_the_reason_and_keeps_existing_labels(photo):
    apply_records([record()])

    apply_records([record(minutes=5, status="FAILED", labels={}, error=AnalysisError("InvalidImageFormatException", "bad image"))])

    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED
    assert photo.status_reason == "InvalidImageFormatException: bad image"
    assert "Dog" in labels_of(photo)


def _photos(n, offset=0):
    owner = get_user_model().objects.create_user(f"bulk{offset}", password="x")
    Photo.objects.bulk_create(
        [Photo(owner=owner, image=f"uploads/bulk/{offset + i}.jpg") for i in range(n)]
    )
    return [f"uploads/bulk/{offset + i}.jpg" for i in range(n)]


def _batch(keys, minutes, labels):
    return [
        record(key=k, minutes=minutes, labels=labels, moderation=[("Explicit", 95.0, "")],
               text=[TextDetection(text="HI", type="LINE", confidence=90.0, box=Box(0, 0, 0.1, 0.1))])
        for k in keys
    ]


def test_a_batch_costs_the_same_number_of_queries_for_2_or_60_records(db):
    small, large = _photos(2, 0), _photos(60, 100)
    apply_records(_batch(small, 0, {"Dog": 90.0, "Grass": 70.0}))
    apply_records(_batch(large, 0, {"Dog": 90.0, "Grass": 70.0}))

    with CaptureQueriesContext(connection) as few:
        apply_records(_batch(small, 5, {"Dog": 91.0, "Cat": 80.0}))
    with CaptureQueriesContext(connection) as many:
        apply_records(_batch(large, 5, {"Dog": 91.0, "Cat": 80.0}))

    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]
    # Staging loads are COPY on PostgreSQL (not logged) and one executemany on SQLite.
    assert len(few) <= (20 if connection.vendor == "postgresql" else 28)
    assert Label.objects.filter(name="Cat").count() == 62
    assert not Label.objects.filter(name="Grass").exists()


def test_reanalysis_result_equals_a_fresh_analysis_for_machine_fields(photo):
    apply_records([record()])
    final = record(minutes=5, labels={"Dog": 70.0, "Cat": 65.0})

    apply_records([final])

    got = {n: lb.confidence for n, lb in labels_of(photo).items()}
    assert got == {"Dog": 70.0, "Cat": 65.0}
    assert replace(final, labels=()).updated_at == Photo.objects.get(pk=photo.pk).record_updated_at
