"""Admin v1: the changelist, its filters and search, the change page, and who gets in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from photos.models import Label, ModerationLabel, Photo
from photos.roles import roles_ensure

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/photos/photo/"


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(user)
    return client


def seed(n: int, start: int = 0):
    owner = get_user_model().objects.create_user(f"owner{start}", password="x")
    photos = Photo.objects.bulk_create(
        [Photo(owner=owner, image=f"uploads/t/{start + i}.jpg", original_filename=f"p{start + i}.jpg",
               status="labeled", engine="local", thumbnail=f"thumbnails/{start + i}.jpg") for i in range(n)]
    )
    Label.objects.bulk_create(
        [Label(photo=p, name=name, confidence=conf) for p in photos for name, conf in
         (("Dog", 90.0), ("Animal", 90.0), ("Grass", 60.0), ("Face", 70.0), ("Text", 55.0))]
    )
    return photos


QUERIES = []


def count_queries(client, url):
    client.get(url)  # steady state: the filter sidebar's choices are cached
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    QUERIES[:] = ctx.captured_queries
    return len(ctx), response


def test_changelist_query_count_is_constant_whatever_the_page_size(admin_client):
    seed(10)
    ten, _ = count_queries(admin_client, CHANGELIST)
    seed(90, start=1000)
    hundred, response = count_queries(admin_client, CHANGELIST + "?all=")

    assert ten == hundred, "N+1 in the photo changelist"
    assert hundred <= 10, [q["sql"][:90] for q in QUERIES]
    assert response.content.decode().count('class="field-label_chips"') == 100


def test_changelist_shows_chips_status_and_owner(admin_client):
    seed(1)

    page = admin_client.get(CHANGELIST).content.decode()

    assert "Dog 90%" in page and "owner0" in page and "Labeled" in page
    assert 'src="/photos/' in page  # thumbnail served through the permission-checked view


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status__exact=failed", {"bad.jpg"}),
        ("?label=Cat", {"cat.jpg"}),
        ("?q=Cat", {"cat.jpg"}),
        ("?q=bad", {"bad.jpg"}),
        ("?moderation_state__exact=flagged", {"cat.jpg"}),
        ("?engine=rekognition", {"bad.jpg"}),
    ],
)
def test_filters_and_search(admin_client, query, expected):
    cat = Photo.objects.create(image="uploads/t/cat.jpg", original_filename="cat.jpg", status="labeled", moderation_state="flagged", engine="local")
    Label.objects.create(photo=cat, name="Cat", confidence=90.0)
    Label.objects.create(photo=cat, name="Animal", confidence=90.0)
    Photo.objects.create(image="uploads/t/bad.jpg", original_filename="bad.jpg", status="failed", engine="rekognition")

    response = admin_client.get(CHANGELIST + query)

    shown = {p.original_filename for p in response.context["cl"].result_list}
    assert shown == expected


def test_change_page_shows_the_image_and_labels_inline(admin_client):
    (photo,) = seed(1)
    ModerationLabel.objects.create(photo=photo, name="Explicit", confidence=91.0)

    page = admin_client.get(f"{CHANGELIST}{photo.pk}/change/").content.decode()

    assert f'/photos/{photo.uid}/image/' in page
    assert "Dog" in page and "Grass" in page and "Explicit" in page


def test_site_user_gets_nothing_in_the_admin(client):
    user = get_user_model().objects.create_user("site", password="x")
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(("group", "can_change_label"), [("Editors", True), ("Moderators", False)])
def test_roles_see_photos_with_their_own_permissions(client, group, can_change_label):
    roles_ensure()
    user = get_user_model().objects.create_user(group.lower(), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    (photo,) = seed(1)
    client.force_login(user)

    assert client.get(CHANGELIST).status_code == 200
    assert user.has_perm("photos.change_label") is can_change_label
    # Neither role changes a photo through its form: moderation goes through the queue.
    assert not user.has_perm("photos.change_photo")
    post = client.post(f"{CHANGELIST}{photo.pk}/change/", {"original_filename": "renamed.jpg"})
    assert post.status_code == 403


def test_roles_are_idempotent():
    first = roles_ensure()
    second = roles_ensure()

    assert first == second == {"Editors": 9, "Moderators": 9}


def test_changelist_counts_stop_at_the_cap_and_say_so(admin_client, monkeypatch):
    from photos.admin import filters

    monkeypatch.setattr(filters, "COUNT_CAP", 5)
    monkeypatch.setattr(filters.CappedPaginator, "cap", 5)
    seed(8)

    page = admin_client.get(CHANGELIST).content.decode()

    assert "more than 5 photos" in page
    seed(2, start=100)
    assert "1 photo" in admin_client.get(CHANGELIST + "?q=p101").content.decode()  # exact under the cap
