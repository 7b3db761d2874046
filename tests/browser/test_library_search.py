"""An owner searches their own library on My photos, private photos included, in Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.steps import log_in
from tests.records import analysed_photo
from tests.samples import PHOTOS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_finds_a_private_photo_by_its_label_and_narrows_by_a_facet(live_server, page, tmp_path):
    alice = get_user_model().objects.create_user("alice", password="a-long-pass-phrase-9")
    analysed_photo("beach-dog.jpg", {"Dog": (96.0, ["Animal"]), "Beach": (88.0, [])}, visibility="private", owner=alice)
    analysed_photo("sofa-dog.jpg", {"Dog": (91.0, ["Animal"]), "Couch": (85.0, ["Furniture"])}, visibility="private",
                   owner=alice)
    analysed_photo("cat.jpg", {"Cat": (95.0, ["Animal"])}, visibility="private", owner=alice)
    log_in(page, f"{live_server.url}/accounts/login/?next=/photos/", "alice", "a-long-pass-phrase-9")

    page.get_by_label("Search my photos by label and text").fill("Dog")
    page.get_by_role("button", name="Search").click()

    results = page.locator("#photo-list .photo .filename")
    expect(results).to_have_count(2)
    expect(page.locator(".facets")).to_contain_text("Beach")
    page.screenshot(path=str(tmp_path / "library-search.png"), full_page=True)
    page.locator(".facets a", has_text="Beach").click()
    expect(results).to_have_text(["beach-dog.jpg"])
    # An upload from the search's results is not added to them: it may not match.
    page.set_input_files("#upload-form input[type=file]", str(PHOTOS["rocket"]))
    expect(page.locator("#upload-summary")).to_contain_text("They are in All my photos, not in this search.")
    expect(results).to_have_text(["beach-dog.jpg"])
    page.get_by_role("link", name="All my photos").click()
    expect(results).to_have_count(4)  # and the one just uploaded
