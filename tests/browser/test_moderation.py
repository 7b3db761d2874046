"""A user reports a public photo from the gallery (it stays visible: one new account is not
evidence); a moderator finds it in the queue and removes it in the admin; it is gone from
the gallery. Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from infra.functions.labeler.record import Label as RecordLabel, LabelRecord
from photos.models import AuditEvent, Photo
from photos.roles import roles_ensure
from photos.apply import apply_records
from tests.browser.steps import log_in
from tests.samples import photo_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def public_photo(name: str) -> Photo:
    photo = Photo(original_filename=name, content_type="image/jpeg", visibility="public")
    photo.image.save(name, ContentFile(photo_bytes("rocket")))
    photo.thumbnail.save(f"t-{name}", ContentFile(photo_bytes("rocket")))
    stamp = "2026-11-22T08:00:00.000000Z"
    apply_records([LabelRecord(bucket="b", key=photo.image.name, status="LABELED", engine="local", analyzed_at=stamp,
                               updated_at=stamp, labels=(RecordLabel(name="Rocket", confidence=95.0),))])
    return Photo.objects.get(pk=photo.pk)


def test_reported_photo_removed_by_a_moderator_leaves_the_gallery(live_server, browser):
    photo = public_photo("launch.jpg")
    public_photo("other.jpg")
    roles_ensure()
    get_user_model().objects.create_user("alice", password="pw-alice-123")
    moderator = get_user_model().objects.create_user("mo", password="pw-mo-12345", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))

    user_context, mod_context = browser.new_context(), browser.new_context()
    try:
        _report_then_remove(live_server, user_context, mod_context, photo, moderator)
    finally:
        user_context.close()
        mod_context.close()


def _report_then_remove(live_server, user_context, mod_context, photo, moderator):
    user = user_context.new_page()
    user.set_default_timeout(30_000)
    log_in(user, f"{live_server.url}/accounts/login/", "alice", "pw-alice-123")
    user.goto(f"{live_server.url}/gallery/")
    expect(user.locator("#gallery .photo")).to_have_count(2)
    user.click(f"#gallery .photo[data-id='{photo.uid}'] a.title")
    user.click("#flag summary")
    user.select_option("select[name=reason]", "violence")
    user.fill("textarea[name=note]", "explosion")
    user.click("#flag button[type=submit]")
    expect(user.locator(".messages")).to_contain_text("moderators will look at this photo")
    expect(user.locator("#flag")).to_contain_text("You reported this photo on")  # not offered the form again
    # One new account's report is not evidence enough to hide it: it stays visible while
    # it waits in the moderation queue.
    user.goto(f"{live_server.url}/gallery/")
    expect(user.locator("#gallery .photo")).to_have_count(2)

    mod = mod_context.new_page()
    mod.set_default_timeout(30_000)
    log_in(mod, f"{live_server.url}/admin/login/", "mo", "pw-mo-12345")
    mod.goto(f"{live_server.url}/admin/photos/moderationcase/")
    row = mod.locator("#result_list tbody tr", has_text="launch.jpg")
    preview = row.locator("img.blurred")
    expect(preview).to_have_css("filter", "blur(12px)")
    preview.click()  # reveal on click (a static script: the CSP forbids inline handlers)
    expect(row.locator("img.revealed")).to_have_css("filter", "none")
    row.locator("a", has_text="decide").click()
    expect(mod.locator("body")).to_contain_text("Violence or gore by alice")
    mod.select_option("select[name=decision]", "remove")
    mod.select_option("select[name=reason]", "violence")
    mod.fill("textarea[name=note]", "graphic")
    mod.click("#decide-form [type=submit]")
    expect(mod.locator(".messagelist")).to_contain_text("remove recorded")

    user.goto(f"{live_server.url}/gallery/")
    expect(user.locator("#gallery .photo")).to_have_count(1)
    expect(user.locator(f"#gallery .photo[data-id='{photo.uid}']")).to_have_count(0)
    assert user.goto(f"{live_server.url}/gallery/{photo.uid}/").status == 404
    assert Photo.objects.get(pk=photo.pk).moderation_state == "removed"
    assert AuditEvent.objects.filter(action="remove", actor=moderator, note="graphic").exists()
