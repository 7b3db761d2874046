"""Every site page and the editors' review page at a phone's width (390 px): nothing
scrolls sideways (issue 12, finding 6: the review page was 911 px wide)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from photos.services import moderation
from photos.models import Flag, Photo
from tests.browser.steps import log_in
from tests.browser.test_review import log_in_as_editor, make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOTS_DIR")
PHONE = {"width": 390, "height": 844}


def wide(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_scrolls_sideways_on_a_phone(live_server, browser):
    photo = make_photo("a-rather-long-file-name-from-a-camera-IMG_20261125_093112_HDR.jpg",
                       {"Person": 97.0, "Dining Table": 88.0, "Hat": 75.0})
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    Photo.objects.filter(pk=photo.pk).update(owner=owner, visibility="public")
    moderation.photo_flag(photo_id=photo.pk, reporter=owner, reason="spam")
    assert Flag.objects.exists()

    anonymous = browser.new_context(viewport=PHONE).new_page()
    pages = {"/": anonymous, "/gallery/": anonymous, f"/gallery/{photo.uid}/": anonymous, "/accounts/login/": anonymous,
             "/accounts/signup/": anonymous, "/accounts/password_reset/": anonymous, "/api/docs/": anonymous}
    user = browser.new_context(viewport=PHONE).new_page()
    log_in(user, f"{live_server.url}/accounts/login/", "owner", "pw-owner-123")
    pages.update({u: user for u in ("/photos/", f"/photos/{photo.uid}/", f"/photos/{photo.uid}/delete/",
                                    "/photos/trash/", "/photos/reports/")})
    editor = browser.new_context(viewport=PHONE).new_page()
    log_in_as_editor(editor, live_server)
    pages[f"/admin/photos/photo/{photo.pk}/review/"] = editor

    too_wide = {}
    for url, page in pages.items():
        response = page.goto(f"{live_server.url}{url}")
        assert response.status < 400, url
        page.wait_for_load_state("networkidle")
        if wide(page) > PHONE["width"]:
            too_wide[url] = wide(page)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/phone{url.replace('/', '_')[:60]}.png", full_page=True)
    assert too_wide == {}


LAPTOP = {"width": 1280, "height": 800}


def test_the_admin_tables_fit_a_1280_px_screen(live_server, browser):
    """The photo and moderation tables were cut off at 1280 px (issue 19, finding 4)."""
    labels = {name: 90.0 - n for n, name in enumerate(
        ["Person", "Dining Table", "Hat", "Furniture", "Chair", "Cup", "Bottle", "Clothing", "Face", "Head",
         "Table", "Indoors", "Restaurant", "Food", "Wine Glass"])}
    photo = make_photo("a-rather-long-file-name-from-a-camera-IMG_20261125_093112_HDR.jpg", labels)
    owner = get_user_model().objects.create_user("a-long-user-name-of-someone", password="pw-owner-123")
    Photo.objects.filter(pk=photo.pk).update(owner=owner, visibility="public")
    moderation.photo_flag(photo_id=photo.pk, reporter=owner, reason="spam")
    get_user_model().objects.create_superuser("root", password="pw-root-12345")
    page = browser.new_context(viewport=LAPTOP).new_page()
    log_in(page, f"{live_server.url}/admin/login/", "root", "pw-root-12345")

    too_wide = {}
    for url in ("/admin/photos/photo/", "/admin/photos/moderationcase/", "/admin/photos/reviewitem/",
                "/admin/photos/auditevent/"):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        # The document, and the table inside its own scrolling box (where it was cut off).
        table = page.evaluate("(() => { const r = document.querySelector('#changelist .results');"
                              " return r ? r.scrollWidth - r.clientWidth : 0; })()")
        if wide(page) > LAPTOP["width"] or table > 0:
            too_wide[url] = (wide(page), table)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/laptop{url.replace('/', '_')[:60]}.png", full_page=True)
    assert too_wide == {}
