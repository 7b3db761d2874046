"""A video in Chromium (issue 21): chosen in My photos beside a photo, listed with its
length on its poster, played on its page and sought to a later second (which needs the
byte ranges the server answers)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from photos.models import Photo
from photos.pipelines.local import analyze_photo
from photos.renditions import photo_make_thumbnail
from tests.browser.steps import sign_up
from tests.samples import PHOTOS, video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def test_a_video_uploads_beside_a_photo_and_plays_and_seeks(live_server, page, tmp_path):
    clip = tmp_path / "IMG_0042.mp4"
    clip.write_bytes(video(container="mp4", seconds=4, size=(640, 360), photo="astronaut", audio=True))
    # (the astronaut panned: a person in every frame)
    sign_up(page, live_server.url, "filmer", "a-long-pass-phrase-9")

    expect(page.locator("#upload-form.js")).to_be_visible()
    page.set_input_files("input[name=photos]", [str(clip), str(PHOTOS["chelsea"])])
    expect(page.locator("#upload-summary")).to_contain_text("2 of 2 files uploaded.")
    item = Photo.objects.get(owner__username="filmer", kind=Photo.Kind.VIDEO)
    photo_make_thumbnail(photo_id=item.id)
    assert analyze_photo.run(item.id) == "applied"  # the real local detector, frame by frame

    page.reload()
    card = page.locator(".photo", has_text="IMG_0042.mp4")
    expect(card.locator(".video-badge")).to_have_text("▶ 0:04")
    expect(card.locator(".thumb img")).to_have_js_property("complete", True)
    assert card.locator(".thumb img").evaluate("img => img.naturalWidth") == 640  # the poster
    page.screenshot(path=f"{SHOTS or tmp_path}/video-library.png", full_page=True)

    card.locator("a.filename").click()
    player = page.locator("#photo-video")
    expect(player).to_be_visible()
    # Waited for by the player's own events, not by the clock.
    player.evaluate("v => new Promise(done => v.readyState >= 1 ? done() :"
                    " v.addEventListener('loadedmetadata', () => done(), { once: true }))")
    assert abs(player.evaluate("v => v.duration") - 4.0) < 0.2
    assert player.evaluate("v => [v.videoWidth, v.videoHeight]") == [640, 360]
    player.evaluate("v => new Promise(done => { v.addEventListener('seeked', () => done(), { once: true });"
                    " v.muted = true; v.currentTime = 3; })")
    assert player.evaluate("v => v.currentTime") >= 2.9 and player.evaluate("v => v.error") is None
    expect(page.locator("dd.duration")).to_have_text("0:04")
    # The labels, with when each is seen: a click plays from there.
    person = page.locator(".video-labels li", has_text="Person")
    expect(person.locator("button.seek").first).to_have_text("0:00–0:04")
    at = person.locator("button.seek").first.evaluate(
        "b => new Promise(done => { const v = document.getElementById('photo-video');"
        " v.addEventListener('seeked', () => done(v.currentTime), { once: true }); b.click(); })")
    assert at < 0.1
    page.screenshot(path=f"{SHOTS or tmp_path}/video-page.png", full_page=True)
