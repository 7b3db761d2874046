"""A video in Chromium (issue 21): chosen in My photos beside a photo, listed with its
length on its poster, played on its page and sought to a later second (which needs the
byte ranges the server answers), with the boxes of each moment over the playing frame;
and a flagged video's moments as blurred stills on the moderator's decide page."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from photos.models import Photo
from photos.pipelines.local import analyze_photo
from photos.renditions import photo_make_stream, photo_make_thumbnail
from photos.roles import roles_ensure
from tests.browser.steps import log_in, sign_up
from tests.photos.test_video_timeline import flag_frames_from
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
    # No boxes over the poster (the sharpest frame of another moment) before it plays.
    expect(page.locator(".frame")).to_have_attribute("data-boxes-shown", "0")
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

    # The boxes of what is seen at each moment, drawn over the playing frame: the person's
    # box at 3 s lies over the player, and goes when the boxes are switched off.
    player.evaluate("v => new Promise(done => { v.addEventListener('seeked', () => done(), { once: true });"
                    " v.pause(); v.currentTime = 3.2; })")
    frame = page.locator(".frame")
    expect(frame).to_have_attribute("data-boxes-at", "3200")
    box = page.locator(".video-box:not([hidden])", has_text="Person").first
    expect(box).to_be_visible()
    shown, video_rect = box.bounding_box(), player.bounding_box()
    assert video_rect["x"] - 1 <= shown["x"] and shown["x"] + shown["width"] <= video_rect["x"] + video_rect["width"] + 1
    assert shown["width"] > 0.1 * video_rect["width"]
    page.screenshot(path=f"{SHOTS or tmp_path}/video-boxes.png")
    page.locator("#video-boxes-shown").uncheck()
    expect(frame).to_have_attribute("data-boxes-shown", "0")

    # Search finds it by what is in it, and the card says when (the link starts there).
    page.goto(f"{live_server.url}/photos/?q=person")
    seen = page.locator(".photo", has_text="IMG_0042.mp4").locator("a.seen-at")
    expect(seen).to_have_text("Person at 0:00")
    page.screenshot(path=f"{SHOTS or tmp_path}/video-search.png", full_page=True)


def test_a_moderator_sees_the_flagged_moments_as_blurred_stills(live_server, page, tmp_path, media_root, monkeypatch):
    """A video whose frames from 3 s on are flagged: the decide page shows the still of the
    flagged moment, blurred until clicked, beside its time, which seeks the player."""
    flag_frames_from(monkeypatch, 3000)
    item = Photo(original_filename="fight.mp4", content_type="video/mp4", kind=Photo.Kind.VIDEO, duration_ms=5000,
                 video_codec="h264", width=640, height=360)
    item.image.save("fight.mp4", ContentFile(video(seconds=5, size=(640, 360), photo="astronaut")))
    assert analyze_photo.run(item.id) == "applied"
    photo_make_stream(photo_id=item.id)
    roles_ensure()
    moderator = get_user_model().objects.create_user("mo", password="pw-mo-12345", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))

    log_in(page, f"{live_server.url}/admin/login/", "mo", "pw-mo-12345")
    page.goto(f"{live_server.url}/admin/photos/moderationcase/{item.pk}/decide/")
    still = page.locator("#moderation-segments img.still")
    expect(still).to_have_count(1)
    expect(still).to_have_js_property("complete", True)
    assert still.evaluate("img => [img.naturalWidth, getComputedStyle(img).filter]") == [640, "blur(12px)"]
    page.screenshot(path=f"{SHOTS or tmp_path}/video-decide-blurred.png", full_page=True)
    still.click()
    assert still.evaluate("img => getComputedStyle(img).filter") == "none"
    at = page.locator("#moderation-segments button.seek").first.evaluate(
        "b => new Promise(done => { const v = document.getElementById('preview');"
        " v.addEventListener('seeked', () => done(v.currentTime), { once: true }); b.click(); })")
    assert abs(at - 3.0) < 0.05
    page.screenshot(path=f"{SHOTS or tmp_path}/video-decide.png", full_page=True)


def test_an_editor_sees_the_boxes_of_each_moment_while_the_video_plays(live_server, page, tmp_path, media_root):
    item = Photo(original_filename="walk.mp4", content_type="video/mp4", kind=Photo.Kind.VIDEO, duration_ms=4000,
                 video_codec="h264", width=640, height=360)
    item.image.save("walk.mp4", ContentFile(video(seconds=4, size=(640, 360), photo="astronaut")))
    assert analyze_photo.run(item.id) == "applied"
    photo_make_stream(photo_id=item.id)
    roles_ensure()
    editor = get_user_model().objects.create_user("ed", password="pw-ed-123456", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editors"))

    log_in(page, f"{live_server.url}/admin/login/", "ed", "pw-ed-123456")
    page.goto(f"{live_server.url}/admin/photos/photo/{item.pk}/review/")
    stage, player = page.locator("#stage"), page.locator("#preview")
    expect(stage).to_have_attribute("data-boxes-shown", "0")  # none over the poster
    player.evaluate("v => new Promise(done => { v.addEventListener('seeked', () => done(), { once: true });"
                    " v.currentTime = 3.2; })")
    box = page.locator("#stage g.box:not(.off-time)").first
    expect(box).to_be_attached()
    assert int(stage.get_attribute("data-boxes-shown")) >= 1
    assert box.evaluate("g => g.dataset.label") == "Person"
    page.screenshot(path=f"{SHOTS or tmp_path}/video-review-boxes.png")
    page.locator('#toggles input[data-toggle="Person"]').uncheck()  # the label toggle hides its boxes
    assert page.locator("#stage g.box:not(.off-time):not(.hidden)").count() == 0
