"""The site user's whole path in Chromium: sign up, drag and drop several real photos,
watch their labels arrive, search the gallery, report a photo; once a moderator removes
it, it is gone from the gallery and from the API, the reporter sees the outcome and the
owner the reason, and appeals."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from photos.services import moderation
from photos.models import Photo
from tests.browser.steps import DROP, dropped, sign_up

pytestmark = [pytest.mark.browser, pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]

def test_sign_up_drop_photos_search_report_and_see_it_removed(live_server, real_celery_worker, page):
    sign_up(page, live_server.url, "ada", "a-long-pass-phrase-7")

    expect(page.locator("#upload-form.js")).to_be_visible()  # upload.js has run
    page.check("#id_public")
    page.evaluate(DROP, [dropped("grace_hopper", "astronaut", "chelsea") + [
        {"name": "notes.jpg", "type": "image/jpeg", "data": base64.b64encode(b"not a photo at all").decode()}]])

    progress = page.locator("#upload-progress li")
    expect(progress).to_have_count(4)
    expect(page.locator('#upload-progress li[data-result="accepted"]')).to_have_count(3, timeout=30_000)
    expect(progress.filter(has_text="notes.jpg")).to_contain_text("notes.jpg is not an image we can read")
    grace = page.locator(".photo", has_text="grace_hopper.jpg")
    expect(grace.locator(".chip", has_text="Face")).to_be_visible(timeout=60_000)
    # The worker labels them one after the other: wait for all three before searching.
    for name in ("grace_hopper.jpg", "astronaut.png", "chelsea.png"):
        expect(page.locator(".photo", has_text=name).locator(".status")).to_have_text("Labeled", timeout=60_000)

    uid = {p.original_filename: str(p.uid) for p in Photo.objects.all()}
    page.goto(f"{live_server.url}/gallery/?q=Person")
    expect(page.locator("#gallery .photo")).to_have_count(2)  # grace_hopper and astronaut; not the cat
    expect(page.locator(f"#gallery .photo[data-id='{uid['chelsea.png']}']")).to_have_count(0)
    expect(page.locator("#gallery")).not_to_contain_text(".png")  # public pages never show file names

    page.click(f"#gallery .photo[data-id='{uid['astronaut.png']}'] a.title")
    page.click("#flag summary")
    page.select_option("select[name=reason]", "privacy")
    page.click("#flag button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("moderators will look at this photo")

    astronaut = Photo.objects.get(original_filename="astronaut.png")
    moderator = get_user_model().objects.create_user("mo", password="x", is_staff=True)
    moderation.photo_moderate(photo_id=astronaut.pk, decision="remove", actor=moderator, note="face of a real person", reason="privacy")

    page.goto(f"{live_server.url}/gallery/")
    expect(page.locator(f"#gallery .photo[data-id='{uid['astronaut.png']}']")).to_have_count(0)
    expect(page.locator(f"#gallery .photo[data-id='{uid['grace_hopper.jpg']}']")).to_have_count(1)
    api = page.request.get(f"{live_server.url}/api/photos/").json()
    assert uid["astronaut.png"] not in [p["id"] for p in api["results"]]
    # Gone for everyone else; its owner (here also the reporter) still has it.
    anonymous = page.context.browser.new_context()
    assert anonymous.request.get(f"{live_server.url}/api/photos/{astronaut.uid}/").status == 404
    anonymous.close()
    assert page.request.get(f"{live_server.url}/api/photos/{astronaut.uid}/").status == 200

    # The reporter (here also the owner) sees the outcome; the owner sees why, and appeals.
    page.goto(f"{live_server.url}/photos/reports/")
    expect(page.locator(f".reports tr:has(td[data-id='{uid['astronaut.png']}'])")).to_contain_text("Removed by a moderator")
    page.goto(f"{live_server.url}/photos/")
    page.locator(".photo", has_text="astronaut.png").locator("a", has_text="why, and appeal").click()
    expect(page.locator(".details")).to_contain_text("Reason: Someone's personal information")
    expect(page.locator(".details")).to_contain_text("Moderator's note: face of a real person")
    page.click("#appeal summary")
    page.fill("#appeal-text", "It is a press photo of a public figure.")
    page.click("#appeal button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Appeal sent")
    expect(page.locator(".details")).to_contain_text("you appealed on")
    astronaut.refresh_from_db()
    assert astronaut.moderation_state == "appealed"
    assert Photo.objects.filter(moderation.awaiting_moderation_q(), pk=astronaut.pk).exists()  # back in the queue
