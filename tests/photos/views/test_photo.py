"""The owner's page for one photo (issue 12, finding 1): large view with label boxes,
text found, facts, moderation outcome, download, visibility and delete with confirmation."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from infra.functions.labeler.record import Box, Instance, Label, LabelRecord, TextDetection
from photos.services import moderation
from photos.models import AuditEvent, Photo
from photos.apply import apply_records
from tests.photos.test_privacy import assert_clean, body, photo_with_gps, user

pytestmark = pytest.mark.django_db

STAMP = "2026-11-25T08:00:00.000000Z"


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("owner", password="x")


@pytest.fixture
def photo(client, owner):
    client.force_login(owner)
    client.post("/photos/", {"photos": [SimpleUploadedFile("Été à Paris.jpg", photo_with_gps(), content_type="image/jpeg")]})
    photo = Photo.objects.get(owner=owner)
    apply_records([LabelRecord(
        bucket="b", key=photo.key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
        labels=(Label(name="Cat", confidence=91.2, parents=("Animal",),
                      instances=(Instance(box=Box(left=0.1, top=0.2, width=0.5, height=0.6), confidence=88.0),)),
                Label(name="Animal", confidence=91.2), Label(name="Blurry", confidence=12.0)),
        text=(TextDetection(text="CHELSEA", type="LINE", confidence=98.73012614250183, box=Box(0.1, 0.1, 0.2, 0.05)),
              TextDetection(text="CHELSEA", type="WORD", confidence=98.7, box=Box(0.1, 0.1, 0.2, 0.05))),
    )])
    photo.refresh_from_db()
    return photo


def test_the_owner_sees_labels_boxes_text_and_facts(client, photo):
    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Été à Paris.jpg" in page
    assert 'data-label="Cat"' in page and "left:10.00%;top:20.00%;width:50.00%;height:60.00%" in page
    assert re.search(r'<button type="button" class="chip toggle" aria-pressed="false" data-label="Cat"', page)
    assert "Blurry" not in page  # under the display threshold: not shown, as everywhere
    assert "“CHELSEA” <small>99%</small>" in page and page.count("CHELSEA") == 1  # lines, not words; no 98.730126
    assert f"{photo.width} × {photo.height} px" in page and "JPEG" in page
    assert f'src="/photos/{photo.uid}/display/"' in page
    assert f'href="/photos/{photo.uid}/image/?download=1"' in page


def test_my_photos_links_each_photo_to_its_page_and_to_a_delete_confirmation(client, photo):
    page = client.get("/photos/").content.decode()

    assert page.count(f'href="/photos/{photo.uid}/"') == 2  # thumbnail and name
    assert f'href="/photos/{photo.uid}/delete/"' in page
    assert f'action="/photos/{photo.uid}/delete/"' not in page  # no one-click delete


def test_the_large_view_is_the_clean_rendition_and_the_download_is_the_original(client, photo):
    display = client.get(f"/photos/{photo.uid}/display/")
    assert display.status_code == 200 and display["Content-Type"] == "image/jpeg"
    assert_clean(body(display))

    download = client.get(f"/photos/{photo.uid}/image/?download=1")
    assert body(download) == photo.image.open("rb").read()
    assert download["Content-Disposition"] == (
        "attachment; filename=\"_t_ _ Paris.jpg\"; filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20Paris.jpg")


@pytest.mark.parametrize("who", ["anonymous", "stranger", "moderator"])
def test_nobody_else_gets_the_page_or_changes_anything(client, photo, who):
    if who == "stranger":
        client.force_login(user("stranger"))
    elif who == "moderator":
        client.force_login(user("mod", "Moderators"))
    else:
        client.logout()

    responses = [client.get(f"/photos/{photo.uid}/"), client.get(f"/photos/{photo.uid}/delete/"),
                 client.post(f"/photos/{photo.uid}/visibility/", {"visibility": "public"})]

    assert [r.status_code for r in responses] == ([302] * 3 if who == "anonymous" else [404] * 3)
    photo.refresh_from_db()
    assert photo.visibility == Photo.Visibility.PRIVATE
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.VISIBILITY).exists()


def test_visibility_changes_through_the_service_on_the_record(client, photo, owner):
    response = client.post(f"/photos/{photo.uid}/visibility/", {"visibility": "public"}, follow=True)

    photo.refresh_from_db()
    assert photo.visibility == Photo.Visibility.PUBLIC
    assert "Public: it shows in the gallery." in response.content.decode()
    event = AuditEvent.objects.get(action=AuditEvent.Action.VISIBILITY)
    assert (event.actor, event.photo, event.before, event.after) == (owner, photo, {"visibility": "private"},
                                                                     {"visibility": "public"})
    assert client.get("/gallery/").content.decode().count(str(photo.uid)) >= 1

    client.post(f"/photos/{photo.uid}/visibility/", {"visibility": "private"})
    photo.refresh_from_db()
    assert photo.visibility == Photo.Visibility.PRIVATE
    assert str(photo.uid) not in client.get("/gallery/").content.decode()


def test_a_bad_visibility_is_refused_with_a_message(client, photo):
    response = client.post(f"/photos/{photo.uid}/visibility/", {"visibility": "everyone"}, follow=True)

    assert "Choose public or private." in response.content.decode()
    photo.refresh_from_db()
    assert photo.visibility == Photo.Visibility.PRIVATE


def test_delete_asks_first_then_moves_to_the_trash_on_the_record(client, photo):
    confirm = client.get(f"/photos/{photo.uid}/delete/")
    assert confirm.status_code == 200 and "Move 1 photo to the trash?" in confirm.content.decode()
    photo.refresh_from_db()
    assert photo.trashed_at is None  # asking changes nothing

    client.post(f"/photos/{photo.uid}/delete/")

    photo.refresh_from_db()
    assert photo.trashed_at is not None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TRASH, photo=photo).exists()
    page = client.get(f"/photos/{photo.uid}/").content.decode()
    assert "Restore from the trash" in page and f'href="/photos/{photo.uid}/erase/"' in page


def test_the_owner_sees_the_moderation_outcome_with_the_moderators_reason(client, photo, owner):
    moderator = user("mod", "Moderators")
    Photo.objects.filter(pk=photo.pk).update(moderation_state=Photo.Moderation.FLAGGED)
    moderation.photo_moderate(photo_id=photo.pk, decision="remove", actor=moderator, note="Shows a car's number plate.", reason="privacy")
    client.force_login(owner)

    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Removed by a moderator" in page and "Moderator's note: Shows a car&#x27;s number plate." in page and "Reason: Someone&#x27;s personal information" in page
    # Removed: shown to its owner alone, to appeal it knowingly, with the original to download.
    assert f'src="/photos/{photo.uid}/display/"' in page and "nobody else sees it" in page
    assert f'href="/photos/{photo.uid}/image/?download=1"' in page


def test_a_photo_still_being_analysed_says_so(client, owner):
    client.force_login(owner)
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), (10, 120, 200)).save(buf, "PNG")
    client.post("/photos/", {"photos": [SimpleUploadedFile("new.png", buf.getvalue(), content_type="image/png")]})
    photo = Photo.objects.get(owner=owner)

    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Being analysed; labels appear here when it finishes." in page and "120 × 90 px" in page
