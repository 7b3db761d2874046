"""Suggestions a person can use: only names the same person's search finds, with how
many photos. They used to come from every analysed photo: a visitor was offered
"Computer" from someone's private photo, and the search then found nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from photos.models import Label, Photo, PublicLabelCount
from photos.selectors import suggestions
from photos.services.photos import photo_describe
from photos.tasks import count_public_labels
from tests.records import analysed_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return (get_user_model().objects.create_user("ann", password="x"),
            get_user_model().objects.create_user("ben", password="x"))


def names(client, prefix: str, **params) -> dict[str, int]:
    response = client.get("/api/labels/", {"prefix": prefix, **params})
    assert response.status_code == 200, response.content
    return {s["name"]: s["photos"] for s in response.json()["suggestions"]}


def test_a_visitor_is_offered_only_labels_public_photos_show(client, people):
    ann, _ = people
    analysed_photo("p1.jpg", {"Cat": (95.0, ["Animal"]), "Computer": (40.0, [])}, owner=ann)  # Computer under display
    analysed_photo("p2.jpg", {"Cat": (91.0, ["Animal"])}, owner=ann)
    analysed_photo("private.jpg", {"Computer": (97.0, []), "Camera": (97.0, [])}, owner=ann, visibility="private")
    analysed_photo("trashed.jpg", {"Car": (97.0, [])}, owner=ann, trashed_at=timezone.now())
    analysed_photo("flagged.jpg", {"Canoe": (97.0, [])}, owner=ann, moderation_state="flagged")
    rejected = analysed_photo("rejected.jpg", {"Cactus": (97.0, [])}, owner=ann)
    Label.objects.filter(photo=rejected, name="Cactus").update(review_state=Label.Review.REJECTED)

    assert names(client, "c") == {"Cat": 2}
    assert names(client, "com") == {}  # private, or under the display threshold: never offered
    for offered in names(client, "c"):  # every suggestion finds what it counts
        assert client.get("/api/photos/", {"q": offered}).json()["results"]


def test_public_counts_are_renewed_by_the_beat_and_by_the_first_request_when_it_stops(client, people):
    ann, _ = people
    photo = analysed_photo("p.jpg", {"Horse": (95.0, [])}, owner=ann)
    analysed_photo("z.jpg", {"Zebra": (95.0, [])}, owner=ann)  # the counts are never empty
    assert names(client, "hor") == {"Horse": 1}

    Photo.objects.filter(pk=photo.pk).update(visibility="private")
    count_public_labels()  # the beat, every COUNT_SECONDS
    assert names(client, "hor") == {}

    Photo.objects.filter(pk=photo.pk).update(visibility="public")
    cache.clear()
    assert names(client, "hor") == {}  # counted less than twice the interval ago: kept
    stale = timezone.now() - timedelta(seconds=2 * suggestions.COUNT_SECONDS + 1)
    PublicLabelCount.objects.update(counted_at=stale)  # no beat ran for twice the interval
    cache.clear()  # the once-a-minute freshness check is due
    assert names(client, "hor") == {"Horse": 1}  # recounted by this request


def test_an_owner_is_offered_their_own_labels_words_and_titles_with_counts(client, people):
    ann, ben = people
    a = analysed_photo("a.jpg", {"Dog": (95.0, ["Animal"])}, owner=ann, visibility="private")
    analysed_photo("b.jpg", {"Dog": (92.0, ["Animal"])}, owner=ann, visibility="private")
    analysed_photo("bens.jpg", {"Dolphin": (99.0, [])}, owner=ben, visibility="private")
    analysed_photo("gone.jpg", {"Donkey": (99.0, [])}, owner=ann, visibility="private", trashed_at=timezone.now())
    photo_describe(photo_id=a.id, actor=ann, title="Dora at the dockyard", caption="")

    assert client.get("/api/labels/", {"prefix": "do", "owner": "me"}).status_code == 401
    assert client.get("/api/labels/", {"prefix": "do", "owner": "ben"}).status_code == 400
    client.force_login(ann)
    assert names(client, "do", owner="me") == {"Dog": 2, "dora": 1, "dockyard": 1}  # not ben's, not the trash
    assert names(client, "do") == {}  # the gallery's: ann's photos are private
    for offered in names(client, "do", owner="me"):
        assert client.get("/api/photos/", {"q": offered, "owner": "me"}).json()["results"], offered
