"""Flags, automatic flags, thresholds, the soft lock and moderators' decisions, each on
the record."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from infra.functions.labeler.record import LabelRecord, ModerationLabel as RecordModeration
from photos.services import moderation
from photos.models import AuditEvent, Flag, ModerationSettings, Photo
from photos.apply import apply_records

pytestmark = pytest.mark.django_db


def users(*names, staff=False):
    return [get_user_model().objects.create_user(n, password="x", is_staff=staff) for n in names]


def analysed(key="uploads/a.jpg", moderation_labels=(), minutes=0, public=True):
    stamp = f"2026-11-22T08:{minutes:02d}:00.000000Z"
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=stamp, updated_at=stamp,
                               moderation_labels=tuple(RecordModeration(name=n, confidence=c, parent=p, level=2 if p else 1)
                                                       for n, c, p in moderation_labels))])
    Photo.objects.filter(image=key).update(visibility="public" if public else "private")
    return Photo.objects.get(image=key)


def test_automatic_flag_is_on_the_record_and_hides_the_photo():
    photo = analysed(moderation_labels=[("Explicit Nudity", 92.0, "Explicit"), ("Explicit", 92.0, "")])

    assert photo.moderation_state == "flagged"
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.before, event.after["moderation_state"]) == ("flag", None, {"moderation_state": "none"}, "flagged")
    assert not Photo.objects.visible_to(AnonymousUser()).filter(pk=photo.pk).exists()


def test_thresholds_from_the_admin_row_apply_at_once_and_per_category():
    ModerationSettings.objects.create(flag_threshold=50.0, category_thresholds={"Swimwear or Underwear": 97.0})

    swim = analysed("uploads/swim.jpg", [("Female Swimwear or Underwear", 90.0, "Swimwear or Underwear")])
    explicit = analysed("uploads/x.jpg", [("Exposed Buttocks or Anus", 55.0, "Explicit Nudity"), ("Explicit Nudity", 55.0, "Explicit")])

    assert swim.moderation_state == "none"  # its category needs 97
    assert explicit.moderation_state == "flagged"  # 55 >= the general 50


def test_a_person_flags_once_and_the_photo_goes_to_the_queue_still_visible():
    photo = analysed()
    (alice,) = users("alice")

    assert moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="spam", note="ads") is True
    assert moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="spam") is False

    photo.refresh_from_db()
    assert photo.moderation_state == "none"
    assert Photo.objects.filter(moderation.awaiting_moderation_q(), pk=photo.pk).exists()
    assert Flag.objects.count() == 1
    assert AuditEvent.objects.filter(action="flag", actor=alice).count() == 1


def old_account(name):
    from datetime import timedelta

    from django.utils import timezone

    return get_user_model().objects.create_user(name, password="x", date_joined=timezone.now() - timedelta(days=30))


def test_reports_hide_only_on_evidence(settings):
    """20 new accounts cannot hide a photo; three established ones can; one staff can."""
    settings.REPORTS_TO_HIDE = 3
    photo, staff_photo = analysed(), analysed("uploads/b.jpg")
    for i in range(20):
        spammer = get_user_model().objects.create_user(f"new{i}", password="x")
        moderation.photo_flag(photo_id=photo.id, reporter=spammer, reason="spam")
    photo.refresh_from_db()
    assert photo.moderation_state == "none"

    for i in range(2):
        moderation.photo_flag(photo_id=photo.id, reporter=old_account(f"old{i}"), reason="spam")
    photo.refresh_from_db()
    assert photo.moderation_state == "none"
    moderation.photo_flag(photo_id=photo.id, reporter=old_account("old2"), reason="spam")
    photo.refresh_from_db()
    assert photo.moderation_state == "flagged"

    staff = get_user_model().objects.create_user("mod", password="x", is_staff=True)
    moderation.photo_flag(photo_id=staff_photo.id, reporter=staff, reason="nudity")
    staff_photo.refresh_from_db()
    assert staff_photo.moderation_state == "flagged"


def test_a_moderator_clears_a_reported_visible_photo_and_the_reports_are_resolved():
    photo = analysed()
    (alice, mod) = users("alice", "mod")
    moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="spam")

    moderation.photo_moderate(photo_id=photo.id, decision="clear", actor=mod, note="fine")

    assert not Photo.objects.filter(moderation.awaiting_moderation_q(), pk=photo.pk).exists()
    assert Flag.objects.get().resolved_at is not None


def test_unknown_reason_is_refused():
    photo = analysed()
    (alice,) = users("alice")

    with pytest.raises(moderation.ModerationError):
        moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="ugly")


def test_soft_lock_keeps_a_second_moderator_out():
    photo = analysed(moderation_labels=[("Explicit", 95.0, "")])
    first, second = users("mod1", "mod2", staff=True)

    assert moderation.case_lock(photo_id=photo.id, actor=first).acquired
    lock = moderation.case_lock(photo_id=photo.id, actor=second)

    assert not lock.acquired and lock.holder_id == first.id
    with pytest.raises(moderation.ModerationError, match="Another moderator"):
        moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=second, reason="spam")
    moderation.case_release(photo_id=photo.id, actor=first)
    assert moderation.case_lock(photo_id=photo.id, actor=second).acquired


def test_an_expired_lock_can_be_taken_over():
    from datetime import timedelta

    from django.utils import timezone

    photo = analysed(moderation_labels=[("Explicit", 95.0, "")])
    first, second = users("mod1", "mod2", staff=True)
    moderation.case_lock(photo_id=photo.id, actor=first)
    Photo.objects.filter(id=photo.id).update(moderation_locked_until=timezone.now() - timedelta(seconds=1))

    assert moderation.case_lock(photo_id=photo.id, actor=second).acquired


@pytest.mark.parametrize(("decision", "state", "public"), [("clear", "cleared", True), ("remove", "removed", False), ("escalate", "escalated", False)])
def test_decisions_set_the_state_resolve_flags_and_are_recorded(decision, state, public):
    photo = analysed(moderation_labels=[("Explicit", 95.0, "")])
    (alice,) = users("alice")
    (mod,) = users("mod", staff=True)
    moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="nudity")

    moderation.photo_moderate(photo_id=photo.id, decision=decision, actor=mod, note="checked", reason="nudity")

    photo.refresh_from_db()
    assert photo.moderation_state == state
    assert photo.moderation_locked_by is None
    event = AuditEvent.objects.filter(actor=mod).get()
    assert (event.action, event.before["moderation_state"], event.after["moderation_state"], event.note) == (decision, "flagged", state, "checked")
    assert Flag.objects.filter(resolved_at__isnull=True).exists() is (decision == "escalate")
    assert Photo.objects.visible_to(AnonymousUser()).filter(pk=photo.pk).exists() is public


def test_clearance_survives_resync_until_a_stronger_label_arrives():
    photo = analysed(moderation_labels=[("Swimwear or Underwear", 90.0, "")])
    (mod,) = users("mod", staff=True)
    moderation.photo_moderate(photo_id=photo.id, decision="clear", actor=mod)
    assert Photo.objects.get(id=photo.id).cleared_moderation == {"Swimwear or Underwear": 90.0}

    analysed(moderation_labels=[("Swimwear or Underwear", 90.4, "")], minutes=5)
    assert Photo.objects.get(id=photo.id).moderation_state == "cleared"

    analysed(moderation_labels=[("Swimwear or Underwear", 96.0, "")], minutes=10)
    assert Photo.objects.get(id=photo.id).moderation_state == "flagged"


def test_invalid_decisions_are_refused():
    photo = analysed()
    (mod,) = users("mod", staff=True)

    with pytest.raises(moderation.ModerationError, match="Only a flagged"):
        moderation.photo_moderate(photo_id=photo.id, decision="clear", actor=mod)
    # Nobody flagged or reported it: no case to remove it on (issue 19, finding 3).
    with pytest.raises(moderation.ModerationError, match="Only a flagged, escalated, appealed or reported photo can be removed"):
        moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=mod, reason="spam")
    Photo.objects.filter(pk=photo.pk).update(moderation_state="flagged")
    moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=mod, reason="spam")
    with pytest.raises(moderation.ModerationError, match="already been removed"):
        moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=mod, reason="spam")


def test_a_decision_on_a_case_that_changed_since_the_page_was_drawn_is_refused():
    """Moderator 2's page showed the photo flagged; moderator 1 cleared it meanwhile; 2's
    "remove" used to override the newer decision (issue 19, finding 3)."""
    photo = analysed()
    Photo.objects.filter(pk=photo.pk).update(moderation_state="flagged")
    first, second = users("mod1", "mod2", staff=True)

    moderation.photo_moderate(photo_id=photo.id, decision="clear", actor=first, seen_state="flagged")
    with pytest.raises(moderation.ModerationError, match="changed since you opened it: it is now cleared"):
        moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=second, reason="spam", seen_state="flagged")

    assert Photo.objects.get(pk=photo.pk).moderation_state == "cleared"
    assert AuditEvent.objects.filter(photo=photo, action="remove").count() == 0


def test_the_history_says_reported_for_a_report_and_flagged_only_when_it_hid_the_photo():
    """The history said "Flagged" for a report the queue listed as "Not flagged"
    (issue 19, finding 4)."""
    photo = analysed()
    alice, = users("alice")

    moderation.photo_flag(photo_id=photo.id, reporter=alice, reason="spam")

    event = AuditEvent.objects.get(photo=photo, actor=alice)
    assert event.summary == "Reported (Spam or scam)"
    assert Photo.objects.get(pk=photo.pk).moderation_state == "none"
