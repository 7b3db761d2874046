"""The gallery's search in Chromium: suggestions while typing, label chips and top-label
facets that search, relevance order, and a phone-width page (issue 12, finding 2)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from photos.models import Photo
from tests.photos.selectors.test_search import photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def cards(page) -> list[str]:
    """The file names behind the gallery's cards, in order (the page never shows them)."""
    uids = page.locator("#gallery .photo").evaluate_all("cards => cards.map(c => c.dataset.id)")
    return [Photo.objects.get(uid=u).original_filename for u in uids]


def test_suggestions_chips_facets_and_sort(live_server, page):
    photo("old-sure-dog.jpg", {"Dog": 99.0, "Grass": 90.0}, age_days=3, parents={"Dog": ("Animal",)})
    photo("new-unsure-dog.jpg", {"Dog": 71.0}, parents={"Dog": ("Animal",)})
    photo("shop.jpg", {"Building": 90.0, "Dining Table": 80.0}, {"OPEN DAILY": 97.0})

    page.goto(f"{live_server.url}/gallery/")
    expect(page.locator("#search-box[data-suggesting=on]")).to_have_count(1)  # its script listens
    page.fill("#search-box", "grass d")
    expect(page.locator("#label-suggestions option")).to_have_count(2)  # Dog, Dining Table
    values = page.locator("#label-suggestions option").evaluate_all("os => os.map(o => o.value)")
    assert values == ["grass Dog", "grass Dining Table"]
    page.fill("#search-box", "dining t")  # the start of one two-word label
    expect(page.locator("#label-suggestions option")).to_have_count(1)
    assert page.locator("#label-suggestions option").evaluate_all("os => os.map(o => o.value)") == ["Dining Table"]
    page.fill("#search-box", "dog do")  # Dog is typed already: not suggested again
    expect(page.locator("#label-suggestions option")).to_have_count(0)

    page.locator(".photo", has_text="OPEN DAILY").locator("a.chip", has_text="Building").click()
    expect(page).to_have_url(f"{live_server.url}/gallery/?q=Building")
    expect(page.locator("#gallery .photo")).to_have_count(1)

    page.fill("#search-box", "open")
    page.press("#search-box", "Enter")
    expect(page.locator("#gallery .photo")).to_have_count(1)
    expect(page.locator("#gallery")).to_contain_text("“OPEN DAILY”")

    page.fill("#search-box", "animal")
    page.select_option("#sort", "relevance")
    page.click(".search button[type=submit]")
    expect(page.locator("#gallery .photo")).to_have_count(2)
    assert cards(page) == ["old-sure-dog.jpg", "new-unsure-dog.jpg"]
    page.locator(".facets a.chip", has_text="Grass").click()
    expect(page.locator("#gallery .photo")).to_have_count(1)
    assert cards(page) == ["old-sure-dog.jpg"]
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/gallery-search.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
