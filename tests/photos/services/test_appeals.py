"""Moderation outcomes reach people (issue 12, finding 4): the owner sees the reason a
moderator chose and can appeal once, which puts the photo back in the queue; reporters
see what became of their reports."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from photos.services import moderation
from photos.models import AuditEvent, Photo
from tests.photos.services.test_moderation import analysed, users

pytestmark = pytest.mark.django_db


@pytest.fixture
def removed(client):
    owner, reporter = users("owner", "reporter")
    (mod,) = users("mod", staff=True)
    photo = analysed(moderation_labels=[("Explicit", 95.0, "")])
    Photo.objects.filter(pk=photo.pk).update(owner=owner)
    moderation.photo_flag(photo_id=photo.id, reporter=reporter, reason="nudity")
    moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=mod, reason="nudity", note="Clearly explicit.")
    client.force_login(owner)
    return photo, owner, reporter, mod


def queue() -> list[int]:
    return list(Photo.objects.filter(moderation.awaiting_moderation_q()).values_list("pk", flat=True))


def test_a_removal_needs_a_reason_the_owner_sees(client, removed):
    photo, owner, _, mod = removed
    other = analysed(key="uploads/b.jpg", moderation_labels=[("Explicit", 95.0, "")])
    with pytest.raises(moderation.ModerationError, match="Choose the reason"):
        moderation.photo_moderate(photo_id=other.id, decision="remove", actor=mod)

    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Reason: Nudity or sexual content" in page and "Moderator's note: Clearly explicit." in page
    assert "Appeal this decision" in page


def test_the_admin_decision_form_asks_for_the_reason_of_a_removal(client):
    from photos.admin.forms import DecisionForm

    form = DecisionForm({"decision": "remove", "note": "x"})

    assert not form.is_valid() and form.errors["reason"] == ["Choose the reason for the removal: the owner sees it."]
    assert DecisionForm({"decision": "remove", "reason": "spam"}).is_valid()
    assert DecisionForm({"decision": "clear"}).is_valid()


def test_an_appeal_puts_the_photo_back_in_the_queue_still_hidden_and_on_the_record(client, removed):
    photo, owner, _, _ = removed
    assert photo.pk not in queue()

    response = client.post(f"/photos/{photo.uid}/appeal/", {"text": "It is a classical statue."}, follow=True)

    assert "Appeal sent" in response.content.decode()
    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.APPEALED and photo.pk in queue()
    event = AuditEvent.objects.get(action=AuditEvent.Action.APPEAL)
    assert (event.actor, event.note) == (owner, "It is a classical statue.")
    client.logout()
    assert client.get(f"/gallery/{photo.uid}/").status_code == 404  # hidden while appealed


@pytest.mark.parametrize(("decision", "state"), [("clear", "cleared"), ("remove", "removed")])
def test_a_moderator_decides_the_appeal_and_a_second_appeal_is_refused(client, removed, decision, state):
    photo, owner, _, mod = removed
    client.post(f"/photos/{photo.uid}/appeal/", {"text": "Please look again."})

    moderation.photo_moderate(photo_id=photo.id, decision=decision, actor=mod, reason="nudity")

    photo.refresh_from_db()
    assert photo.moderation_state == state
    if state == "removed":
        page = client.get(f"/photos/{photo.uid}/").content.decode()
        assert "Your appeal was decided: the removal stands." in page and "Appeal this decision" not in page
        with pytest.raises(moderation.ModerationError, match="appealed already"):
            moderation.photo_appeal(photo_id=photo.id, actor=owner, text="Again")


@pytest.mark.parametrize(("who", "text", "error"), [
    ("owner", "", "Say why the photo should be restored."),
    ("owner", "x" * 2001, "Keep the appeal under 2000 characters."),
    ("reporter", "mine now", "No such photo."),
])
def test_bad_appeals_are_refused_with_the_reason_and_change_nothing(client, removed, who, text, error):
    photo, owner, reporter, _ = removed
    actor = owner if who == "owner" else reporter

    with pytest.raises(moderation.ModerationError, match=error):
        moderation.photo_appeal(photo_id=photo.id, actor=actor, text=text)

    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.REMOVED
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.APPEAL).exists()


def test_only_a_removed_photo_can_be_appealed(client):
    (owner,) = users("owner")
    photo = analysed()
    Photo.objects.filter(pk=photo.pk).update(owner=owner)

    with pytest.raises(moderation.ModerationError, match="Only a removed photo"):
        moderation.photo_appeal(photo_id=photo.id, actor=owner, text="why not")


def test_someone_elses_appeal_route_is_a_404(client, removed):
    photo, _, reporter, _ = removed
    client.force_login(reporter)

    assert client.post(f"/photos/{photo.uid}/appeal/", {"text": "x"}).status_code == 404


def test_reporters_see_what_became_of_their_reports(client, removed):
    photo, _, reporter, mod = removed
    waiting = analysed(key="uploads/w.jpg")
    cleared = analysed(key="uploads/c.jpg")
    moderation.photo_flag(photo_id=waiting.id, reporter=reporter, reason="spam")
    moderation.photo_flag(photo_id=cleared.id, reporter=reporter, reason="violence")
    moderation.photo_moderate(photo_id=cleared.id, decision="clear", actor=mod)
    client.force_login(reporter)

    page = client.get("/photos/reports/").content.decode()

    rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    outcomes = {Photo.objects.get(uid=row.split('data-id="')[1].split('"')[0]).original_filename: row for row in rows}
    assert "Removed by a moderator" in next(r for k, r in outcomes.items() if "a.jpg" in k)
    assert "Waiting for a moderator" in next(r for k, r in outcomes.items() if "w.jpg" in k)
    assert "Reviewed by a moderator: it stays up" in next(r for k, r in outcomes.items() if "c.jpg" in k)
    main = page.split("<main>")[1]
    assert "Clearly explicit" not in main and not re.search(r"\bmod\b", main)  # no notes, no moderator names


def test_nobody_sees_anyone_elses_reports(client, removed):
    client.force_login(get_user_model().objects.create_user("bystander"))

    assert "You have not reported any photo." in client.get("/photos/reports/").content.decode()


def test_a_removed_photo_is_its_owners_alone_while_appealed_and_a_second_appeal_says_so(client, removed):
    """The owner sees what was removed (to appeal it knowingly) and may download it;
    nobody else sees it, the reporter included, appeal or not."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from tests.samples import photo_bytes

    photo, owner, reporter, _ = removed
    assert default_storage.save(photo.image.name, ContentFile(photo_bytes("rocket"))) == photo.image.name
    urls = [f"/photos/{photo.uid}/{kind}/" for kind in ("image", "display")]
    assert [client.get(u).status_code for u in urls] == [200, 200]

    client.post(f"/photos/{photo.uid}/appeal/", {"text": "Please look again."})
    again = client.post(f"/photos/{photo.uid}/appeal/", {"text": "Again!"}, follow=True).content.decode()

    assert "You appealed already: a moderator will look again" in again
    assert f'src="/photos/{photo.uid}/display/"' in again and "nobody else sees it" in again
    for other in (reporter, None):  # appealing restores nothing by itself
        client.logout()
        if other:
            client.force_login(other)
        assert [client.get(u).status_code for u in urls] == [404, 404]
        assert client.get(f"/gallery/{photo.uid}/").status_code == 404


def test_a_reporter_is_not_offered_the_form_twice_and_stays_on_the_photo(client):
    (reporter,) = users("reporter")
    photo = analysed()
    client.force_login(reporter)

    response = client.post(f"/gallery/{photo.uid}/", {"reason": "spam"})
    page = client.get(f"/gallery/{photo.uid}/").content.decode()

    assert response["Location"] == f"/gallery/{photo.uid}/"
    assert "You reported this photo on" in page and 'name="reason"' not in page


def test_only_a_removals_note_reaches_the_owner(client):
    (owner,) = users("owner")
    (mod,) = users("mod", staff=True)
    photo = analysed(moderation_labels=[("Explicit", 95.0, "")])
    Photo.objects.filter(pk=photo.pk).update(owner=owner)
    moderation.photo_moderate(photo_id=photo.id, decision="escalate", actor=mod, note="Ask Sam, looks like a minor?")
    client.force_login(owner)

    page = client.get(f"/photos/{photo.uid}/").content.decode()

    assert "Ask Sam" not in page and "with senior moderators" in page


def test_an_appeal_is_cleared_or_removed_never_escalated_back_into_view(client, removed):
    photo, _, _, mod = removed
    client.post(f"/photos/{photo.uid}/appeal/", {"text": "Please."})

    with pytest.raises(moderation.ModerationError, match="an appeal is cleared or removed"):
        moderation.photo_moderate(photo_id=photo.id, decision="escalate", actor=mod)

    assert client.get(f"/photos/{photo.uid}/display/").status_code == 404


def test_a_photo_restored_and_removed_again_can_be_appealed_again(client, removed):
    photo, owner, _, mod = removed
    moderation.photo_appeal(photo_id=photo.id, actor=owner, text="first")
    moderation.photo_moderate(photo_id=photo.id, decision="clear", actor=mod)
    Photo.objects.filter(pk=photo.pk).update(moderation_state=Photo.Moderation.FLAGGED)
    moderation.photo_moderate(photo_id=photo.id, decision="remove", actor=mod, reason="spam")

    page = client.get(f"/photos/{photo.uid}/").content.decode()
    moderation.photo_appeal(photo_id=photo.id, actor=owner, text="second")

    assert "Appeal this decision" in page and "removal stands" not in page
    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.APPEALED


def test_the_decide_page_offers_no_escalation_for_an_appeal_and_shows_the_appeal(client, removed):
    from photos.roles import roles_ensure

    photo, owner, _, _ = removed
    moderation.photo_appeal(photo_id=photo.id, actor=owner, text="A classical statue.")
    roles_ensure()
    from django.contrib.auth.models import Group

    mod = get_user_model().objects.create_user("senior", password="x", is_staff=True)
    mod.groups.add(Group.objects.get(name="Moderators"))
    client.force_login(mod)

    page = client.get(f"/admin/photos/moderationcase/{photo.pk}/decide/").content.decode()

    assert 'value="escalate"' not in page and 'value="remove"' in page and 'value="clear"' in page
    assert "A classical statue." in page.split('id="appeal"')[1].split("</p>")[0]


def test_my_reports_stops_showing_a_photo_its_owner_made_private(client, removed):
    """It kept showing the photo's new title and labels (issue 19, finding 3)."""
    _, _, reporter, _ = removed
    photo = analysed(key="uploads/later-private.jpg")
    moderation.photo_flag(photo_id=photo.id, reporter=reporter, reason="spam")
    Photo.objects.filter(pk=photo.pk).update(visibility="private")
    Photo.objects.filter(pk=photo.pk).update(title="My secret garden")  # its owner's new title
    client.force_login(reporter)

    page = client.get("/photos/reports/").content.decode()

    row = page.split(f'data-id="{photo.uid}"')[1].split("</tr>")[0]
    assert "A photo that is no longer public" in row
    assert "My secret garden" not in page
