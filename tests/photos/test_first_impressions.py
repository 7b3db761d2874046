"""The small things a new user notices (issue 12, finding 6)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from photos.selectors import labels
from photos.services import review
from photos.models import AuditEvent, Label
from tests.records import analysed_photo

pytestmark = pytest.mark.django_db


def test_the_front_door_is_the_gallery_for_visitors_and_my_photos_for_users(client):
    assert client.get("/")["Location"] == "/gallery/"

    client.force_login(get_user_model().objects.create_user("ada"))

    assert client.get("/")["Location"] == "/photos/"


def test_audit_lines_say_what_a_label_became():
    editor = get_user_model().objects.create_user("ed", is_staff=True)
    photo = analysed_photo("p.jpg", {"Person": (90.0, []), "Human": (80.0, []), "Man": (70.0, [])})
    person, man = (Label.objects.get(photo=photo, name=n) for n in ("Person", "Man"))

    review.labels_merge(label_ids=[person.id], into="Woman", actor=editor)
    review.labels_merge(label_ids=[man.id], into="Human", actor=editor)

    summaries = sorted(e.summary for e in AuditEvent.objects.filter(action__in=["rename", "merge"]))
    assert summaries == ["Renamed label Man → Human", "Renamed label Person → Woman"]


def test_the_admin_shows_confidences_as_people_read_them(admin_client):
    from infra.functions.labeler.record import Box, LabelRecord, TextDetection
    from photos.apply import apply_records

    photo = analysed_photo("sign.jpg", {"Sign": (90.0, [])})
    apply_records([LabelRecord(bucket="b", key=photo.key, status="LABELED", engine="local",
                               analyzed_at="2026-11-23T08:00:00.000000Z", updated_at="2026-11-23T08:00:00.000000Z",
                               text=(TextDetection(text="EXIT", type="LINE", confidence=98.73012614250183,
                                                   box=Box(0, 0, 1, 1)),))])

    page = admin_client.get(f"/admin/photos/photo/{photo.pk}/change/").content.decode()

    assert "98.7 %" in page and "98.73012614250183" not in page


def test_empty_queues_read_as_sentences(admin_client):
    assert "0 labels to review" in admin_client.get("/admin/photos/reviewitem/").content.decode()
    assert "0 photos to moderate" in admin_client.get("/admin/photos/moderationcase/").content.decode()


def test_a_labelled_photo_with_nothing_above_the_threshold_says_why_it_shows_no_labels(client):
    owner = get_user_model().objects.create_user("owner")
    photo = analysed_photo("rocket.jpg", {"Rocket": (66.6, []), "Vehicle": (69.0, [])}, owner=owner)
    client.force_login(owner)

    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Nothing was recognised confidently enough to show" in page


def test_the_trash_says_when_each_photo_will_be_erased(client):
    from datetime import datetime, timezone

    from photos.models import Photo

    owner = get_user_model().objects.create_user("owner")
    photo = analysed_photo("p.jpg", {"Cat": (90.0, [])}, owner=owner)
    Photo.objects.filter(pk=photo.pk).update(trashed_at=datetime(2026, 11, 25, 12, tzinfo=timezone.utc))
    client.force_login(owner)

    assert "erased on 25 December 2026" in client.get("/photos/trash/").content.decode()


def test_sign_up_offers_log_in_and_visitors_learn_what_the_site_is(client):
    assert 'href="/accounts/login/">Log in</a>' in client.get("/accounts/signup/").content.decode()
    assert "Sign up</a> to upload your own" in client.get("/gallery/").content.decode()


def test_the_moderation_queue_puts_decide_first(admin_client):
    from photos.admin.moderation import ModerationQueueAdmin

    assert ModerationQueueAdmin.list_display[0] == "decide_link"


def test_thresholds_are_read_once_and_a_save_is_seen_at_once(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from photos.selectors.labels import thresholds
    from photos.models import ModerationSettings

    thresholds()
    with CaptureQueriesContext(connection) as reads:
        thresholds()
    row = ModerationSettings.objects.create(display_threshold=80.0)

    assert len(reads) == 0
    assert thresholds()["display"] == 80.0
    row.delete()
    assert thresholds()["display"] == labels._read_thresholds()["display"] != 80.0
