"""The owner's photo page in Chromium: boxes toggled on the image, a phone-width
layout, visibility, and delete (to the trash) with confirmation (issue 12, finding 1)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from infra.functions.labeler.record import Box, Instance, Label, LabelRecord, TextDetection
from photos.models import Photo
from photos.apply import apply_records
from tests.browser.steps import choose_files, sign_up

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def labelled(photo: Photo) -> None:
    stamp = "2026-11-25T08:00:00.000000Z"
    apply_records([LabelRecord(
        bucket="b", key=photo.key, status="LABELED", engine="local", analyzed_at=stamp, updated_at=stamp,
        labels=(Label(name="Cat", confidence=91.2, parents=("Animal",),
                      instances=(Instance(box=Box(left=0.25, top=0.1, width=0.5, height=0.8), confidence=88.0),)),),
        text=(TextDetection(text="CHELSEA", type="LINE", confidence=98.7, box=Box(0.1, 0.1, 0.2, 0.05)),),
    )])


def test_the_owner_toggles_boxes_changes_visibility_and_deletes_with_confirmation(live_server, page):
    sign_up(page, live_server.url, "ada", "a-long-pass-phrase-9")
    choose_files(page, "chelsea")
    expect(page.locator("#upload-summary")).to_contain_text("uploaded.")
    photo = Photo.objects.get(owner__username="ada")
    labelled(photo)

    page.reload()
    page.click(f"a.filename[href='/photos/{photo.uid}/']")
    expect(page.locator("h1")).to_have_text("chelsea.png")
    image, box = page.locator("#photo-image"), page.locator(".box[data-label=Cat]")
    expect(image).to_be_visible()
    page.wait_for_function("document.getElementById('photo-image').naturalWidth > 0")
    expect(box).to_be_hidden()

    page.click("button.toggle[data-label=Cat]")
    expect(box).to_be_visible()
    expect(page.locator("button.toggle[data-label=Cat]")).to_have_attribute("aria-pressed", "true")
    img, rect = image.bounding_box(), box.bounding_box()
    assert abs(rect["x"] - (img["x"] + 0.25 * img["width"])) <= 2 and abs(rect["width"] - 0.5 * img["width"]) <= 2
    assert abs(rect["y"] - (img["y"] + 0.1 * img["height"])) <= 2 and abs(rect["height"] - 0.8 * img["height"]) <= 2
    expect(page.locator(".text-lines")).to_contain_text("CHELSEA")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/photo-page.png", full_page=True)
    page.click("button.toggle[data-label=Cat]")
    expect(box).to_be_hidden()
    page.check("#all-boxes")
    expect(box).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/photo-page-390.png", full_page=True)

    page.click("text=Make public")
    expect(page.locator(".messages")).to_contain_text("Public: it shows in the gallery.")
    expect(page.locator("button", has_text="Make private")).to_be_visible()

    page.click("text=Move to trash…")
    expect(page.locator("h1")).to_have_text("Move 1 photo to the trash?")
    page.click("text=Cancel")
    expect(page.locator("h1")).to_have_text("My photos")
    page.click(f"a.filename[href='/photos/{photo.uid}/']")
    page.click("text=Move to trash…")
    page.click("button:has-text('Move to trash')")
    expect(page.locator(".undo")).to_contain_text("Moved 1 photo to the trash")
    photo.refresh_from_db()
    assert photo.trashed_at is not None
