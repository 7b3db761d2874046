"""My photos as a library in Chromium: multi-select, the move to the trash behind a
confirmation, undo, restore from the trash, and phone-width pages (issue 12, finding 3)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from photos.models import Photo
from tests.browser.steps import choose_files, sign_up

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def trashed() -> set[str]:
    return set(Photo.objects.filter(trashed_at__isnull=False).values_list("original_filename", flat=True))


def test_select_move_to_trash_undo_and_restore(live_server, page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_up(page, live_server.url, "lin", "a-long-pass-phrase-9")
    page.goto(f"{live_server.url}/photos/trash/")  # empty: no toolbar, and no script error about it
    expect(page.locator(".empty")).to_have_text("The trash is empty.")
    assert errors == []
    page.goto(f"{live_server.url}/photos/")
    choose_files(page, "chelsea", "coffee", "rocket")
    expect(page.locator("#upload-summary")).to_contain_text("uploaded.")
    expect(page.locator(".photo")).to_have_count(3)
    trash_button = page.locator(".toolbar button[value=trash]")
    expect(trash_button).to_be_disabled()  # nothing selected yet

    page.check(".photo:has-text('chelsea.png') input[name=ids]")
    page.check(".photo:has-text('coffee.png') input[name=ids]")
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/my-photos-selected.png", full_page=True)
    trash_button.click()
    expect(page.locator("h1")).to_have_text("Move 2 photos to the trash?")
    assert trashed() == set()
    page.click("button:has-text('Move to trash')")
    expect(page.locator(".undo")).to_contain_text("Moved 2 photos to the trash")
    expect(page.locator(".messages")).to_have_count(0)  # one notice, not two
    expect(page.locator(".photo")).to_have_count(1)
    assert trashed() == {"chelsea.png", "coffee.png"}

    page.click(".undo button")
    expect(page.locator(".messages")).to_contain_text("Restored 2 photos.")
    expect(page.locator(".photo")).to_have_count(3)
    assert trashed() == set()

    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    trash_button.click()
    page.click("button:has-text('Move to trash')")
    page.click("a.trash-link")
    expect(page.locator("h1")).to_have_text("Trash")
    expect(page.locator(".photo")).to_have_count(3)
    page.check(".photo:has-text('rocket') input[name=ids]")
    page.click(".toolbar button[value=restore]")
    expect(page.locator(".messages")).to_contain_text("Restored 1 photo.")
    assert trashed() == {"chelsea.png", "coffee.png"}

    for url in ("/photos/", "/photos/trash/"):
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}{url}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/trash-390.png", full_page=True)
