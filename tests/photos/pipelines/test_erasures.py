"""Erasure finishes: the erasure outbox retries until S3 lists no version of any of the
photo's keys, whatever S3 does on the first try (moto, a versioned bucket)."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from infra import resources
from infra.functions.labeler import table as labels
from photos import tasks
from photos.models import PendingErasure, Photo
from photos.pipelines import aws, erasures, media_storage
from photos.pipelines.tombstones import photos_erased
from photos.services.erasure import photo_delete
from tests.emulators import moto_s3_storage
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db

BUCKET = "mediaapp-erasure-test"


@pytest.fixture
def s3(settings, monkeypatch):
    with moto_s3_storage(settings, monkeypatch, BUCKET, versioned=True) as client:
        yield client


def versions(s3, prefix: str) -> int:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))


def owned_photo(s3) -> tuple[Photo, object]:
    owner = get_user_model().objects.create_user("owner", password="x")
    photo = Photo(owner=owner, original_filename="a.jpg", content_type="image/jpeg")
    photo.image.save("a.jpg", ContentFile(photo_bytes("rocket")))
    s3.put_object(Bucket=BUCKET, Key=photo.image.name, Body=b"an older version")  # two versions now
    return photo, owner


def refuse_deletes_once(monkeypatch, code="SlowDown"):
    """DeleteObjects answers 200 with every key in Errors, once (as S3 does under load)."""
    client = media_storage().client
    real = client.delete_objects
    calls = {"refused": 0}

    def delete_objects(**kwargs):
        if calls["refused"] == 0:
            calls["refused"] += 1
            return {"Errors": [{"Key": o["Key"], "VersionId": o["VersionId"], "Code": code, "Message": "Please reduce"}
                               for o in kwargs["Delete"]["Objects"]]}
        return real(**kwargs)

    monkeypatch.setattr(client, "delete_objects", delete_objects)
    return calls


def test_an_erasure_s3_refuses_once_stays_pending_then_finishes_with_no_version_left(s3, monkeypatch,
                                                                                     django_capture_on_commit_callbacks):
    photo, owner = owned_photo(s3)
    key = photo.image.name
    refuse_deletes_once(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        assert photo_delete(photo_id=photo.id, actor=owner) is True

    assert not Photo.objects.filter(id=photo.id).exists()
    pending = PendingErasure.objects.get(key=key)
    assert "SlowDown" in pending.last_error and pending.attempts == 1
    assert versions(s3, key) == 2  # S3 said no: the bytes are still there, and we know it

    result = erasures.erasures_finish(now=timezone.now() + timedelta(hours=1))

    assert result == {"tried": 1, "finished": 1, "pending": 0}
    assert versions(s3, key) == 0


def test_a_worker_gone_between_the_commit_and_the_delete_leaves_the_erasure_pending(s3):
    """The on-commit delete never runs (the process died): the row says what is left."""
    photo, owner = owned_photo(s3)
    key = photo.image.name

    assert photo_delete(photo_id=photo.id, actor=owner) is True  # on_commit callbacks never run here

    assert PendingErasure.objects.get(key=key).names[0] == key
    assert versions(s3, key) == 2
    tasks.finish_erasures.run()
    assert versions(s3, key) == 0 and not PendingErasure.objects.exists()


def test_failed_attempts_back_off_and_are_never_given_up(s3, monkeypatch):
    photo, owner = owned_photo(s3)
    photo_delete(photo_id=photo.id, actor=owner)
    client = media_storage().client

    def down(**kwargs):
        raise RuntimeError("S3 unreachable")

    monkeypatch.setattr(client, "list_object_versions", down)
    monkeypatch.setattr(client, "get_paginator", lambda name: type("P", (), {"paginate": lambda self, **kw: down()})())
    now = timezone.now()
    delays = []
    for _ in range(4):
        pending = PendingErasure.objects.get()
        erasures.erasure_attempt(pending.id, now=now)
        delays.append((PendingErasure.objects.get().next_attempt_at - now).total_seconds())

    assert delays == [60, 120, 240, 480]
    assert PendingErasure.objects.get().attempts == 4
    assert erasures.erasures_finish(now=now)["tried"] == 0  # not due yet


def test_a_tombstone_erases_what_a_delete_marker_left_behind(s3):
    """Deleted in the console (a delete marker over the old versions): the sync's
    tombstone takes the photo, and the outbox every version of its object (the beat
    task does it, not the sync: a mass deletion must not stall the sync)."""
    photo, _ = owned_photo(s3)
    key = photo.image.name
    s3.delete_object(Bucket=BUCKET, Key=key)  # a delete marker; both versions still stored
    assert versions(s3, key) == 3

    assert photos_erased(keys=[key]) == 1
    assert versions(s3, key) == 3 and PendingErasure.objects.get().key == key
    tasks.finish_erasures.run()

    assert versions(s3, key) == 0 and not PendingErasure.objects.exists()


def test_names_merged_in_during_an_attempt_are_not_dropped(s3, monkeypatch):
    """A second erasure of the key adds a name while the first attempt runs: the row
    stays for the next attempt instead of being deleted with the new name unerased."""
    photo, owner = owned_photo(s3)
    photo_delete(photo_id=photo.id, actor=owner)
    pending = PendingErasure.objects.get()
    storage = media_storage()
    real_delete = type(storage).delete

    def delete_and_merge(self, name):
        real_delete(self, name)
        if name == pending.names[-1]:
            erasures.erasure_queue(key=pending.key, names=["thumbnails/late.jpg"], reason="again")

    monkeypatch.setattr(type(storage), "delete", delete_and_merge)

    assert erasures.erasure_attempt(pending.id) is False
    assert "thumbnails/late.jpg" in PendingErasure.objects.get().names


@pytest.fixture
def table(settings, monkeypatch, s3):
    settings.PHOTOS_PIPELINE = "aws"
    settings.LABELS_TABLE_NAME = "labels"
    table = boto3.resource("dynamodb", region_name="us-east-1").create_table(**resources.table_definition("labels"))
    monkeypatch.setattr(aws, "labels_table", lambda: table)
    return table


def test_the_daily_check_erases_an_object_written_after_its_erasure(s3, table):
    """A presigned POST replayed after the erasure (or any late writer) puts bytes back
    under an erased key: the check finds the tombstone and the outbox deletes them."""
    key = "uploads/2026/12/late.jpg"
    labels.erase(table, bucket=BUCKET, key=key, reason="deleted in the app")
    labels.erase(table, bucket=BUCKET, key="uploads/2026/12/clean.jpg", reason="deleted in the app")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"written after the erasure")

    assert tasks.check_erasures.run() == 2
    tasks.finish_erasures.run()

    assert versions(s3, key) == 0 and not PendingErasure.objects.exists()
