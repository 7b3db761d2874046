"""My photos as a timeline, with the owner's words, in Chromium: month headings by date
taken, suggestions from the owner's own labels with counts, a title and caption given on
the photo page and found by the library search."""

from __future__ import annotations

import os
from datetime import datetime, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from photos.models import Photo
from tests.browser.steps import log_in
from tests.records import analysed_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def taken(photo: Photo, *when: int) -> None:
    Photo.objects.filter(pk=photo.pk).update(taken_at=datetime(*when, tzinfo=dt_timezone.utc),
                                             taken_from=Photo.TakenFrom.CAMERA)


def test_a_timeline_with_month_headings_suggestions_and_a_title_found_by_search(live_server, page, tmp_path):
    owner = get_user_model().objects.create_user("tess", password="a-long-pass-phrase-7")
    taken(analysed_photo("IMG_1.jpg", {"Dog": (96.0, ["Animal"])}, visibility="private", owner=owner), 2024, 7, 14, 9)
    taken(analysed_photo("IMG_2.jpg", {"Dog": (90.0, ["Animal"])}, visibility="private", owner=owner), 2024, 7, 2, 18)
    beach = analysed_photo("IMG_3.jpg", {"Beach": (93.0, [])}, visibility="private", owner=owner)
    taken(beach, 2023, 12, 31, 23)
    log_in(page, f"{live_server.url}/accounts/login/?next=/photos/", "tess", "a-long-pass-phrase-7")

    expect(page.locator("#photo-list .month h2")).to_have_text(["July 2024", "December 2023"])
    expect(page.locator("#photo-list .photo .filename")).to_have_text(["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"])
    expect(page.locator("#library-search[data-suggesting=on]")).to_have_count(1)  # its script listens
    page.fill("#library-search", "do")
    expect(page.locator("#library-suggestions option")).to_have_count(1)
    assert page.locator("#library-suggestions option").evaluate_all("os => os.map(o => o.label)") == ["Dog (2 photos)"]
    page.screenshot(path=f"{SHOTS or tmp_path}/library-timeline.png", full_page=True)

    page.locator(".photo", has_text="IMG_3.jpg").locator("a.filename").click()
    page.get_by_label("Title").fill("New Year's Eve in Porto")
    page.get_by_label("Caption").fill("Fireworks over the river")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text("New Year's Eve in Porto")
    expect(page.locator(".caption")).to_have_text("Fireworks over the river")
    page.screenshot(path=f"{SHOTS or tmp_path}/photo-title.png", full_page=True)

    page.goto(f"{live_server.url}/photos/")
    page.fill("#library-search", "porto")
    page.press("#library-search", "Enter")
    expect(page.locator("#photo-list .photo .filename")).to_have_text(["New Year's Eve in Porto"])
