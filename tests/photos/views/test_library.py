"""My photos as a library (issue 12, finding 3): pages with no cap (keyset), multi-select
with bulk visibility and a move to the trash behind a confirmation, undo, the trash with
restore, and erasure after 30 days through the same path as a delete."""

from __future__ import annotations

import re

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from photos.services.erasure import photos_purge_trash
from photos.services.photos import photos_trash
from photos.models import AuditEvent, Photo
from tests.records import analysed_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    user = get_user_model().objects.create_user("owner", password="x")
    client.force_login(user)
    return user


def many(owner, n: int) -> list[Photo]:
    now = timezone.now()
    Photo.objects.bulk_create([
        Photo(owner=owner, image=f"uploads/p{i}.jpg", original_filename=f"p{i}.jpg", sha256=f"{i:064x}",
              # pairs share a timestamp: the id breaks the tie
              created_at=now - timedelta(seconds=i // 2), taken_at=now - timedelta(seconds=i // 2))
        for i in range(n)
    ])
    return list(Photo.objects.filter(owner=owner).order_by("-created_at", "-id"))


def listed(html: str) -> list[str]:
    return re.findall(r'<li class="photo" data-id="([0-9a-f-]+)"', html)


def test_pages_cover_every_photo_once_in_order_at_the_same_cost(client, owner):
    photos = many(owner, 120)
    client.get("/photos/")  # warm the caches (thresholds), as every page but the first in a process finds them
    seen, url, costs = [], "/photos/", []
    while url:
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        costs.append(len(queries))
        seen += listed(html)
        nxt = re.search(r'<a href="\?sort=taken&amp;after=([^"]+)"', html)
        url = f"/photos/?after={nxt[1]}" if nxt else ""

    assert seen == [str(p.uid) for p in photos]  # no cap at 200, no gap, no repeat
    assert len(costs) == 3 and len(set(costs)) == 1, costs  # page 3 costs what page 1 does


def test_a_cursor_that_does_not_parse_starts_from_the_newest(client, owner):
    photos = many(owner, 3)

    html = client.get("/photos/?after=not-a-cursor").content.decode()

    assert listed(html) == [str(p.uid) for p in photos]


def test_bulk_visibility_changes_only_ones_own_photos_on_the_record(client, owner):
    mine = many(owner, 2)
    other = analysed_photo("theirs.jpg", {"Cat": (95.0, [])}, visibility="private",
                           owner=get_user_model().objects.create_user("other"))

    client.post("/photos/bulk/", {"action": "public", "ids": [str(p.uid) for p in mine] + [str(other.uid)]})

    assert set(Photo.objects.filter(owner=owner).values_list("visibility", flat=True)) == {"public"}
    other.refresh_from_db()
    assert other.visibility == "private"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.VISIBILITY).count() == 2


def test_trash_asks_first_then_hides_the_photos_from_everyone_else_and_undo_brings_them_back(client, owner):
    photo = analysed_photo("cat.jpg", {"Cat": (95.0, [])}, owner=owner)  # public and labelled
    ids = {"ids": [str(photo.uid)]}
    assert str(photo.uid) in client.get("/gallery/").content.decode()

    ask = client.post("/photos/bulk/", {"action": "trash", **ids})
    assert "Move 1 photo to the trash?" in ask.content.decode()
    photo.refresh_from_db()
    assert photo.trashed_at is None

    done = client.post("/photos/bulk/", {"action": "trash", "confirmed": "1", **ids}, follow=True).content.decode()

    photo.refresh_from_db()
    assert photo.trashed_at is not None
    assert "Moved 1 photo to the trash: restorable there for 30 days." in done and "Undo" in done and listed(done) == []
    anonymous = Client()
    assert str(photo.uid) not in anonymous.get("/gallery/").content.decode()
    assert anonymous.get(f"/gallery/{photo.uid}/").status_code == 404
    assert anonymous.get(f"/api/photos/{photo.uid}/").status_code == 404
    assert anonymous.get(f"/photos/{photo.uid}/display/").status_code == 404
    assert str(photo.uid) in client.get("/photos/trash/").content.decode()

    client.post("/photos/undo-trash/")

    photo.refresh_from_db()
    assert photo.trashed_at is None
    assert [e.action for e in AuditEvent.objects.filter(photo=photo).order_by("at", "id")] == ["trash", "restore"]


def test_restore_and_delete_for_good_from_the_trash(client, owner, django_capture_on_commit_callbacks):
    keep, drop = many(owner, 2)
    default_storage.save(drop.image.name, ContentFile(b"bytes"))
    photos_trash(photo_ids=[keep.id, drop.id], actor=owner)

    client.post("/photos/bulk/", {"action": "restore", "ids": [str(keep.uid)]})
    ask = client.post("/photos/bulk/", {"action": "erase", "ids": [str(drop.uid)]})
    assert "Delete 1 photo for good?" in ask.content.decode() and Photo.objects.filter(pk=drop.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/photos/bulk/", {"action": "erase", "confirmed": "1", "ids": [str(drop.uid)]})

    keep.refresh_from_db()
    assert keep.trashed_at is None
    assert not Photo.objects.filter(pk=drop.pk).exists() and not default_storage.exists(drop.image.name)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, actor=owner).count() == 1


def test_the_trash_is_emptied_after_30_days_through_the_erasure_path(owner, django_capture_on_commit_callbacks):
    old, recent = many(owner, 2)
    default_storage.save(old.image.name, ContentFile(b"bytes"))
    now = timezone.now()
    Photo.objects.filter(pk=old.pk).update(trashed_at=now - timedelta(days=30, minutes=1))
    Photo.objects.filter(pk=recent.pk).update(trashed_at=now - timedelta(days=29))

    with django_capture_on_commit_callbacks(execute=True):
        assert photos_purge_trash(now=now) == 1

    assert list(Photo.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not default_storage.exists(old.image.name)
    event = AuditEvent.objects.get(action=AuditEvent.Action.DELETE)
    assert event.actor is None and "trash emptied after 30 days" in event.note


def test_the_trash_is_emptied_by_celery_beat(settings):
    assert settings.CELERY_BEAT_SCHEDULE["purge-trash"]["task"] == "photos.tasks.purge_trash"


@pytest.mark.parametrize(("data", "message"), [
    ({"action": "trash"}, "Select at least one photo first."),
    ({"action": "explode", "ids": ["x"]}, "Choose what to do with the selected photos."),
])
def test_bulk_without_a_selection_or_an_action_says_what_is_missing(client, owner, data, message):
    many(owner, 1)

    response = client.post("/photos/bulk/", data, follow=True)

    assert message in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_other_peoples_photos_cannot_be_trashed_restored_or_erased(client, owner):
    theirs = analysed_photo("theirs.jpg", {"Cat": (95.0, [])}, owner=get_user_model().objects.create_user("other"))

    for action in ("trash", "restore", "erase"):
        client.post("/photos/bulk/", {"action": action, "confirmed": "1", "ids": [str(theirs.uid)]})
    erase = client.post(f"/photos/{theirs.uid}/erase/")

    assert erase.status_code == 404
    theirs.refresh_from_db()
    assert theirs.trashed_at is None and not AuditEvent.objects.exists()


def test_deleting_many_for_good_goes_to_the_worker_and_few_are_done_at_once(client, owner, fake_queue):
    from photos.tasks import erase_photos
    from photos.views.library import ERASE_IN_REQUEST

    photos = many(owner, ERASE_IN_REQUEST + 3)
    photos_trash(photo_ids=[p.id for p in photos], actor=owner)
    few, rest = photos[:2], photos[2:]

    client.post("/photos/bulk/", {"action": "erase", "confirmed": "1", "ids": [str(p.uid) for p in few]})
    assert not Photo.objects.filter(pk__in=[p.pk for p in few]).exists()  # done in the request
    response = client.post("/photos/bulk/", {"action": "erase", "confirmed": "1", "ids": [str(p.uid) for p in rest]},
                           follow=True)

    assert "Deleting 11 photos for good" in response.content.decode()
    ((name, (ids, actor_id)),) = [(n, a) for n, a in fake_queue.sent if n == erase_photos.name]
    assert sorted(ids) == sorted(p.pk for p in rest) and actor_id == owner.pk
    assert Photo.objects.filter(pk__in=ids).count() == 11  # still in the trash until the worker runs
    assert erase_photos(ids, owner.pk) == 11 and not Photo.objects.filter(pk__in=ids).exists()


def test_the_worker_erases_only_what_the_actor_may(owner):
    from photos.tasks import erase_photos

    theirs = analysed_photo("theirs.jpg", {"Cat": (95.0, [])}, owner=get_user_model().objects.create_user("other"))

    assert erase_photos([theirs.pk], owner.pk) == 0 and Photo.objects.filter(pk=theirs.pk).exists()


def test_if_the_broker_is_down_many_are_deleted_in_the_request(client, owner, fake_queue):
    from photos.views.library import ERASE_IN_REQUEST

    photos = many(owner, ERASE_IN_REQUEST + 1)
    photos_trash(photo_ids=[p.id for p in photos], actor=owner)
    fake_queue.fail_with = ConnectionError("broker down")

    client.post("/photos/bulk/", {"action": "erase", "confirmed": "1", "ids": [str(p.uid) for p in photos]})

    assert not Photo.objects.filter(owner=owner).exists()
