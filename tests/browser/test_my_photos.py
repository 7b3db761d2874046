"""A site user signs up, uploads two real photos, and watches their labels appear."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.steps import choose_files, sign_up

pytestmark = [pytest.mark.browser, pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


def test_sign_up_upload_two_photos_and_see_labels_appear(live_server, real_celery_worker, page):
    sign_up(page, live_server.url, "grace", "a-long-pass-phrase-9")

    choose_files(page, "grace_hopper", "astronaut")
    # Chosen files go up at once, each with its bar, and one line for the batch.
    expect(page.locator("#upload-summary")).to_have_text("2 of 2 files uploaded.")
    expect(page.locator("#upload-form button[type=submit]")).to_be_hidden()  # one way to upload, not two
    page.evaluate("window.__sameDocument = true")

    grace = page.locator(".photo", has_text="grace_hopper.jpg")
    astronaut = page.locator(".photo", has_text="astronaut.png")
    expect(grace.locator(".chip", has_text="Face")).to_be_visible(timeout=60_000)
    expect(astronaut.locator(".chip", has_text="Face")).to_be_visible(timeout=60_000)
    expect(grace.locator(".status")).to_have_text("Labeled")
    expect(grace.locator(".thumb img")).to_be_visible(timeout=30_000)
    # The labels arrived through the page's live updates, not a reload.
    assert page.evaluate("window.__sameDocument") is True
