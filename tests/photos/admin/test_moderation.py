"""The moderators' queue, the decision page with its soft lock, and the thresholds
superusers edit, in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client

from infra.functions.labeler.record import LabelRecord, ModerationLabel as RecordModeration
from photos.services import moderation
from photos.models import AuditEvent, ModerationSettings, Photo
from photos.roles import roles_ensure
from photos.apply import apply_records
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db

QUEUE = "/admin/photos/moderationcase/"


def flagged(name, confidence, minutes=0):
    photo = Photo(original_filename=name, content_type="image/jpeg", visibility="public")
    photo.image.save(name, ContentFile(photo_bytes("rocket")))
    photo.thumbnail.save(f"t-{name}", ContentFile(photo_bytes("rocket")))
    stamp = f"2026-11-22T08:{minutes:02d}:00.000000Z"
    apply_records([LabelRecord(bucket="b", key=photo.image.name, status="LABELED", engine="local", analyzed_at=stamp,
                               updated_at=stamp, moderation_labels=(RecordModeration(name="Explicit", confidence=confidence),))])
    return Photo.objects.get(pk=photo.pk)


def login(role):
    roles_ensure()
    if role == "superuser":
        user = get_user_model().objects.create_superuser("root", password="x")
    else:
        user = get_user_model().objects.create_user(role or "site", password="x", is_staff=role is not None)
        if role:
            user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


@pytest.mark.parametrize(("role", "queue", "decide", "thresholds"), [
    (None, 302, 302, 302),
    ("Editors", 403, 403, 403),
    ("Moderators", 200, 200, 403),
    ("superuser", 200, 200, 200),
])
def test_who_gets_the_queue_the_decision_page_and_the_thresholds(role, queue, decide, thresholds):
    photo = flagged("a.jpg", 95.0)
    client, _ = login(role)

    got = (
        client.get(QUEUE).status_code,
        client.get(f"{QUEUE}{photo.pk}/decide/").status_code,
        client.get("/admin/photos/moderationsettings/add/").status_code,
    )

    assert got == (queue, decide, thresholds)
    removed = client.post(f"{QUEUE}{photo.pk}/decide/", {"decision": "remove", "reason": "spam"}).status_code
    assert Photo.objects.get(pk=photo.pk).moderation_state == ("removed" if decide == 200 else "flagged"), removed


def test_queue_orders_by_severity_then_age_and_blurs_previews():
    mild_old = flagged("mild-old.jpg", 85.0, minutes=1)
    flagged("severe.jpg", 99.0, minutes=5)
    mild_new = flagged("mild-new.jpg", 85.0, minutes=9)
    Photo.objects.filter(pk=mild_new.pk).update(flagged_at=mild_old.flagged_at.replace(year=2030))
    flagged("fine.jpg", 10.0)
    client, _ = login("Moderators")

    response = client.get(QUEUE)

    assert [p.original_filename for p in response.context["cl"].result_list] == ["severe.jpg", "mild-old.jpg", "mild-new.jpg"]
    assert response.content.decode().count('class="blurred"') == 3
    assert "99 % (Explicit)" in response.content.decode()


def test_a_second_moderator_sees_the_lock_and_cannot_decide():
    photo = flagged("a.jpg", 95.0)
    first, first_user = login("Moderators")
    second, _ = (Client(), None)
    other = get_user_model().objects.create_user("mod2", password="x", is_staff=True)
    other.groups.add(Group.objects.get(name="Moderators"))
    second.force_login(other)

    assert "decide-form" in first.get(f"{QUEUE}{photo.pk}/decide/").content.decode()
    page = second.get(f"{QUEUE}{photo.pk}/decide/").content.decode()
    assert f"{first_user.username} is deciding this photo" in page and "decide-form" not in page
    refused = second.post(f"{QUEUE}{photo.pk}/decide/", {"decision": "clear"}, follow=True).content.decode()
    assert "Another moderator is deciding this photo" in refused
    assert Photo.objects.get(pk=photo.pk).moderation_state == "flagged"

    first.post(f"{QUEUE}{photo.pk}/decide/", {"decision": "clear", "note": "art, not porn"})
    assert Photo.objects.get(pk=photo.pk).moderation_state == "cleared"
    assert AuditEvent.objects.get(action="clear").note == "art, not porn"


def test_removal_hides_the_photo_from_everyone_but_staff():
    photo = flagged("a.jpg", 95.0)
    moderation.photo_moderate(photo_id=photo.pk, decision="clear", actor=get_user_model().objects.create_user("m", password="x"))
    anonymous = Client()
    assert anonymous.get(f"/photos/{photo.uid}/image/").status_code == 200  # cleared and public
    client, _ = login("Moderators")
    moderation.photo_flag(photo_id=photo.pk, reporter=get_user_model().objects.create_user("alice", password="x"), reason="nudity")

    client.post(f"{QUEUE}{photo.pk}/decide/", {"decision": "remove", "reason": "violence", "note": "confirmed"})

    assert anonymous.get(f"/photos/{photo.uid}/image/").status_code == 404
    assert client.get(f"/photos/{photo.uid}/image/").status_code == 200  # staff still see it


def test_superuser_thresholds_take_effect_without_a_deploy():
    client, root = login("superuser")
    client.post("/admin/photos/moderationsettings/add/", {
        "display_threshold": "60", "flag_threshold": "99", "category_thresholds": '{"Explicit": 99.5}'})

    photo = flagged("a.jpg", 95.0)

    assert ModerationSettings.objects.get().flag_threshold == 99.0
    assert photo.moderation_state == "none"
    event = AuditEvent.objects.get(action="thresholds")
    assert event.actor == root and event.after["flag"] == 99.0


def test_there_is_only_one_thresholds_row():
    client, _ = login("superuser")
    row = ModerationSettings.objects.create()

    response = client.get("/admin/photos/moderationsettings/add/")

    assert response.status_code == 302 and response["Location"].endswith(f"/moderationsettings/{row.pk}/change/")


def test_the_decision_form_has_no_default_and_carries_the_state_seen():
    """It defaulted to Clear, so one click cleared a case; and a decision posted after
    another moderator's decided over it (issue 19, findings 3 and 4)."""
    photo = flagged("explicit.jpg", 95.0)
    client, _ = login("Moderators")

    page = client.get(f"{QUEUE}{photo.pk}/decide/").content.decode()
    assert '<option value="" selected>Choose…</option>' in page
    assert 'name="seen_state" value="flagged"' in page
    unchosen = client.post(f"{QUEUE}{photo.pk}/decide/", {"seen_state": "flagged"})
    assert unchosen.status_code == 200 and Photo.objects.get(pk=photo.pk).moderation_state == "flagged"

    Photo.objects.filter(pk=photo.pk).update(moderation_state="cleared")  # another moderator, meanwhile
    stale = client.post(f"{QUEUE}{photo.pk}/decide/", {"decision": "remove", "reason": "spam", "seen_state": "flagged"},
                        follow=True)
    assert "This case changed since you opened it" in stale.content.decode()
    assert Photo.objects.get(pk=photo.pk).moderation_state == "cleared"
