"""Owners search their own library: My photos and the API's owner=me find every photo of
theirs out of the trash (private, public, removed by a moderator) with the gallery's
grammar; nobody else finds them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.records import analysed_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def library():
    alice = get_user_model().objects.create_user("alice", password="x")
    bob = get_user_model().objects.create_user("bob", password="x")
    photos = {
        "private-dog": analysed_photo("private-dog.jpg", {"Dog": (96.0, ["Animal"])}, visibility="private", owner=alice),
        "public-cat": analysed_photo("public-cat.jpg", {"Cat": (95.0, ["Animal"])}, owner=alice),
        "removed-dog": analysed_photo("removed-dog.jpg", {"Dog": (90.0, ["Animal"])}, visibility="private", owner=alice,
                                      moderation_state="removed"),
        "trashed-dog": analysed_photo("trashed-dog.jpg", {"Dog": (93.0, ["Animal"])}, visibility="private", owner=alice,
                                      trashed_at=timezone.now()),
        "bobs-dog": analysed_photo("bobs-dog.jpg", {"Dog": (99.0, ["Animal"])}, visibility="private", owner=bob),
    }
    return alice, bob, photos


def shown(html: str) -> list[str]:
    return sorted(re.findall(r'class="filename" href="[^"]+">([^<]+)</a>', html))


def test_my_photos_search_finds_the_owners_private_and_removed_photos_and_nothing_else(client, library):
    alice, _, _ = library
    client.force_login(alice)

    page = client.get("/photos/", {"q": "Dog"}).content.decode()

    assert shown(page) == ["private-dog.jpg", "removed-dog.jpg"]  # not the trashed one, not bob's
    assert 'name="q" value="Dog"' in page


def test_my_photos_search_speaks_the_gallerys_grammar(client, library):
    alice, _, _ = library
    client.force_login(alice)

    assert shown(client.get("/photos/", {"q": "Animal NOT Dog"}).content.decode()) == ["public-cat.jpg"]
    assert shown(client.get("/photos/", {"q": "Animal"}).content.decode()) == [
        "private-dog.jpg", "public-cat.jpg", "removed-dog.jpg"]
    assert "None of your photos matches “Horse”." in client.get("/photos/", {"q": "Horse"}).content.decode()


def test_my_photos_facets_come_from_the_owners_own_results(client, library):
    alice, bob, _ = library
    client.force_login(bob)
    assert "Cat" not in client.get("/photos/", {"q": "Animal"}).content.decode().split('aria-label="Top labels')[-1][:400]

    client.force_login(alice)
    facets = client.get("/photos/", {"q": "Animal"}).content.decode().split('aria-label="Top labels in these results"')[1]
    assert ">Dog <small>2</small>" in facets and ">Cat <small>1</small>" in facets


def test_the_api_lists_the_callers_own_photos_with_owner_me(client, library):
    alice, _, photos = library
    client.force_login(alice)

    mine = client.get("/api/photos/", {"owner": "me", "q": "Dog"}).json()
    public = client.get("/api/photos/", {"q": "Dog"}).json()

    assert sorted(p["id"] for p in mine["results"]) == sorted(str(photos[k].uid) for k in ("private-dog", "removed-dog"))
    assert public["results"] == []  # none of the dogs is public


def test_owner_me_needs_a_sign_in_and_other_owners_are_refused(client, library):
    assert client.get("/api/photos/", {"owner": "me"}).status_code == 401
    client.force_login(library[0])
    response = client.get("/api/photos/", {"owner": "bob"})
    assert response.status_code == 400 and "owner must be me" in response.json()["error"]


def test_a_private_photo_is_its_owners_in_the_api_and_404_to_everyone_else(client, library):
    alice, bob, photos = library
    url = f"/api/photos/{photos['private-dog'].uid}/"

    assert client.get(url).status_code == 404
    client.force_login(bob)
    assert client.get(url).json() == {"error": "No such photo."}
    client.force_login(alice)
    body = client.get(url).json()
    assert body["id"] == str(photos["private-dog"].uid) and [lb["name"] for lb in body["labels"]] == ["Dog"]
    assert client.get(f"/api/photos/{photos['trashed-dog'].uid}/").status_code == 404  # the trash is the trash's


def test_a_library_search_is_one_page_of_six_queries(client, library, django_assert_max_num_queries):
    """Session, user, the text probe, the photos, their labels, the trash count (the
    taxonomy, thresholds and facets are cached for a minute)."""
    client.force_login(library[0])
    client.get("/photos/", {"q": "Dog"})
    with django_assert_max_num_queries(6):
        assert client.get("/photos/", {"q": "Dog"}).status_code == 200


def test_a_bulk_action_on_search_results_returns_to_the_search(client, library):
    """It used to drop the search: the owner landed on all their photos."""
    alice, _, photos = library
    client.force_login(alice)
    here = "/photos/?q=Dog&sort=relevance"

    made_public = client.post("/photos/bulk/", {"action": "public", "ids": [str(photos["private-dog"].uid)], "next": here})
    asked = client.post("/photos/bulk/", {"action": "trash", "ids": [str(photos["private-dog"].uid)], "next": here})
    trashed = client.post("/photos/bulk/", {"action": "trash", "confirmed": "1", "ids": [str(photos["private-dog"].uid)],
                                            "next": here})
    elsewhere = client.post("/photos/bulk/", {"action": "private", "ids": [str(photos["public-cat"].uid)],
                                              "next": "https://evil.example/photos/"})

    assert made_public["Location"] == here
    assert f'name="next" value="{here.replace("&", "&amp;")}"' in asked.content.decode()
    assert trashed["Location"] == here
    into_trash = client.post("/photos/bulk/", {"action": "private", "ids": [str(photos["public-cat"].uid)],
                                               "next": "/photos/trash/"})
    assert into_trash["Location"] == "/photos/"  # back to My photos only
    assert elsewhere["Location"] == "/photos/"
