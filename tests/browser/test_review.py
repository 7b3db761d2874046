"""An editor works the one-photo review page with the keyboard, and toggles the boxes
drawn over the image, in Debian's Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from infra.functions.labeler.record import Box, Instance, Label as RecordLabel, LabelRecord
from photos.models import AuditEvent, Label, Photo
from photos.roles import roles_ensure
from photos.apply import apply_records
from tests.browser.steps import log_in
from tests.samples import photo_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_photo(name: str, labels: dict[str, float]) -> Photo:
    photo = Photo(original_filename=name, content_type="image/jpeg")
    photo.image.save(name, ContentFile(photo_bytes("grace_hopper")))
    stamp = "2026-11-22T08:00:00.000000Z"
    apply_records([LabelRecord(
        bucket="b", key=photo.image.name, status="LABELED", engine="local", analyzed_at=stamp, updated_at=stamp,
        labels=tuple(RecordLabel(name=n, confidence=c, instances=(Instance(Box(0.32, 0.23, 0.38, 0.33), c),))
                     for n, c in labels.items()))])
    return Photo.objects.get(pk=photo.pk)


def log_in_as_editor(page, live_server):
    roles_ensure()
    editor = get_user_model().objects.create_user("ed", password="pw-ed-12345", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editors"))
    log_in(page, f"{live_server.url}/admin/login/", "ed", "pw-ed-12345")
    return editor


def test_editor_reviews_a_photo_with_the_keyboard(live_server, page):
    first = make_photo("first.jpg", {"Face": 90.0, "Blur": 30.0})
    second = make_photo("second.jpg", {"Person": 80.0})
    log_in_as_editor(page, live_server)
    page.goto(f"{live_server.url}/admin/photos/photo/{first.pk}/review/")

    # The first label (highest confidence, pending) has the focus: approve it.
    expect(page.locator("#labels li.focused")).to_contain_text("Face")
    page.keyboard.press("a")
    expect(page.locator("#labels li", has_text="Face")).to_contain_text("Approved")
    # Down to the next label and reject it.
    page.keyboard.press("s")
    expect(page.locator("#labels li.focused")).to_contain_text("Blur")
    page.keyboard.press("r")
    expect(page.locator("#labels li", has_text="Blur")).to_contain_text("Rejected")
    # Add a label without touching the mouse.
    page.keyboard.press("+")
    page.keyboard.type("Scientist")
    page.keyboard.press("Enter")
    expect(page.locator("#labels li", has_text="Scientist")).to_contain_text("Approved")
    expect(page.locator("#history")).to_contain_text("Added label Scientist")
    # On to the next photo with pending labels.
    page.keyboard.press("n")
    expect(page).to_have_url(f"{live_server.url}/admin/photos/photo/{second.pk}/review/")

    states = dict(Label.objects.filter(photo=first).values_list("name", "review_state"))
    assert states == {"Face": "approved", "Blur": "rejected", "Scientist": "approved"}
    assert AuditEvent.objects.filter(photo=first).count() == 3


def test_boxes_are_drawn_over_the_image_and_toggle_per_label(live_server, page):
    photo = make_photo("boxes.jpg", {"Face": 90.0, "Person": 85.0})
    log_in_as_editor(page, live_server)
    page.goto(f"{live_server.url}/admin/photos/photo/{photo.pk}/review/")

    image = page.locator("#stage img")
    expect(image).to_be_visible()
    face_box = page.locator('#stage g.box[data-label="Face"] rect')
    img_box, rect_box = image.bounding_box(), face_box.bounding_box()
    # The box sits where the record says, relative to the rendered image.
    assert abs((rect_box["x"] - img_box["x"]) / img_box["width"] - 0.32) < 0.02
    assert abs((rect_box["y"] - img_box["y"]) / img_box["height"] - 0.23) < 0.02
    assert abs(rect_box["width"] / img_box["width"] - 0.38) < 0.02
    expect(page.locator('#stage .caption[data-label="Face"]')).to_have_text("Face 90%")

    page.uncheck('input[data-toggle="Face"]')
    expect(page.locator('#stage g.box[data-label="Face"]')).to_be_hidden()
    expect(page.locator('#stage .caption[data-label="Face"]')).to_be_hidden()
    expect(page.locator('#stage .caption[data-label="Person"]')).to_be_visible()
