"""No admin screen or site view changes review or moderation state, visibility,
ownership, or deletes a photo except through the services that enforce the rules and
write the audit entry (issue #10, findings 1-4)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from photos.models import AuditEvent, Label, Photo
from photos.roles import roles_ensure
from tests.records import analysed_photo

pytestmark = pytest.mark.django_db(transaction=True)

PHOTOS = "/admin/photos/photo/"
LABELS = "/admin/photos/label/"


def staff(group: str | None, name: str | None = None, **extra):
    roles_ensure()
    user = get_user_model().objects.create_user(name or (group or "admin").lower(), password="x", is_staff=True, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("owner", password="x")


@pytest.fixture
def photo(owner):
    photo = analysed_photo("private.jpg", {"Dog": (90.0, ["Animal"])}, visibility="private", owner=owner)
    default_storage.save(photo.image.name, ContentFile(b"original bytes"))
    return photo


def change_form_data(response) -> dict:
    """What the rendered change form would post back unchanged: every editable field of
    the form and of each inline, with the management forms."""
    data = {}

    def put(bound):
        value = bound.value()
        if value is True:
            data[bound.html_name] = "on"
        elif value not in (None, False):
            data[bound.html_name] = value

    form = response.context["adminform"].form
    for name in form.fields:
        put(form[name])
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for sub in formset.forms:
            for name in sub.fields:
                put(sub[name])
    return data


def state(photo: Photo) -> tuple:
    photo.refresh_from_db()
    return photo.visibility, photo.owner_id, photo.moderation_state, photo.original_filename


@pytest.mark.parametrize("group", ["Moderators", "Editors"])
def test_no_role_changes_a_photo_through_its_change_form(client, photo, group):
    thief = get_user_model().objects.create_user("thief", password="x")
    before = state(photo)
    client.force_login(staff(group))

    response = client.post(f"{PHOTOS}{photo.pk}/change/", {
        "visibility": "public", "owner": thief.pk, "moderation_state": "removed", "original_filename": "mine.jpg",
    })

    assert response.status_code == 403
    assert state(photo) == before
    assert client.get("/gallery/").status_code == 200 and photo.original_filename not in client.get("/gallery/").content.decode()


def test_even_a_superuser_cannot_change_visibility_owner_or_moderation_in_the_change_form(client, photo):
    thief = get_user_model().objects.create_user("thief", password="x")
    before = state(photo)
    client.force_login(staff(None, is_superuser=True))
    data = change_form_data(client.get(f"{PHOTOS}{photo.pk}/change/"))
    data.update({"visibility": "public", "owner": thief.pk, "moderation_state": "cleared", "original_filename": "mine.jpg"})

    response = client.post(f"{PHOTOS}{photo.pk}/change/", data)

    assert response.status_code == 302  # saved: nothing it may change was changed
    assert state(photo) == before
    assert client.get(f"{PHOTOS}add/").status_code == 403  # photos come from uploads


def test_editors_cannot_rename_approve_move_or_create_labels_outside_the_review_services(client, photo):
    other = analysed_photo("other.jpg", {"Cat": (80.0, [])})
    label = photo.labels.get(name="Dog")
    client.force_login(staff("Editors"))

    edit = client.post(f"{LABELS}{label.pk}/change/", {
        "name": "Wolf", "photo": other.pk, "review_state": "approved", "source": "machine",
    })
    add = client.post(f"{LABELS}add/", {"name": "Fake", "photo": photo.pk, "review_state": "approved", "source": "machine"})

    assert edit.status_code == 403 and add.status_code == 403
    label.refresh_from_db()
    assert (label.name, label.photo_id, label.review_state) == ("Dog", photo.pk, Label.Review.PENDING)
    assert not Label.objects.filter(name="Fake").exists()
    # The review page is the way, and it leaves an audit entry.
    client.post(f"{PHOTOS}{photo.pk}/review/", {"action": "approve", "label": label.pk})
    assert AuditEvent.objects.filter(photo=photo, label_name="Dog", action=AuditEvent.Action.APPROVE).count() == 1


def test_photo_inline_on_the_change_page_changes_no_label(client, photo):
    label = photo.labels.get(name="Dog")
    client.force_login(staff(None, is_superuser=True))
    data = change_form_data(client.get(f"{PHOTOS}{photo.pk}/change/"))
    data.update({"labels-0-name": "Wolf", "labels-0-review_state": "approved", "labels-0-DELETE": "on",
                 "labels-1-name": "Fake", "labels-1-review_state": "approved", "labels-TOTAL_FORMS": "2"})

    assert client.post(f"{PHOTOS}{photo.pk}/change/", data).status_code == 302
    assert list(photo.labels.values_list("name", flat=True)) == ["Dog"]
    label.refresh_from_db()
    assert (label.name, label.review_state) == ("Dog", Label.Review.PENDING)


@pytest.mark.parametrize("how", ["action", "delete_view"])
def test_admin_deletes_go_through_photo_delete(client, photo, how):
    name = photo.image.name
    client.force_login(staff(None, is_superuser=True))

    if how == "action":
        client.post(PHOTOS, {"action": "delete_selected", "_selected_action": [photo.pk], "post": "yes"})
    else:
        client.post(f"{PHOTOS}{photo.pk}/delete/", {"post": "yes"})

    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not default_storage.exists(name)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, note="private.jpg").count() == 1


@pytest.mark.parametrize("group", ["Moderators", "Editors"])
def test_staff_without_delete_permission_cannot_delete_someone_elses_photo_on_the_site(client, photo, group):
    client.force_login(staff(group))

    response = client.post(f"/photos/{photo.uid}/erase/")

    assert response.status_code == 404
    assert Photo.objects.filter(pk=photo.pk).exists() and default_storage.exists(photo.image.name)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DELETE).exists()


def test_the_owner_still_deletes_their_own_photo(client, photo, owner):
    client.force_login(owner)

    client.post(f"/photos/{photo.uid}/erase/")

    assert not Photo.objects.filter(pk=photo.pk).exists()


def test_deleting_an_account_deletes_its_photos_through_photo_delete(client, photo, owner):
    name = photo.image.name
    client.force_login(staff(None, is_superuser=True))

    client.post(f"/admin/auth/user/{owner.pk}/delete/", {"post": "yes"})

    assert not get_user_model().objects.filter(pk=owner.pk).exists()
    assert not Photo.objects.filter(pk=photo.pk).exists() and not default_storage.exists(name)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, note="private.jpg").count() == 1
