"""Direct browser-to-S3 uploads in Chromium: the page gets a presigned POST, sends the
file straight to the bucket (moto's S3 server here) with a progress bar, and confirms."""

from __future__ import annotations

import base64
import boto3
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from photos.models import Photo
from tests.browser.steps import DROP, dropped, log_in
from tests.emulators import moto_server, use_s3_storage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BUCKET = "direct-upload-test"


@pytest.fixture
def s3_server(settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    with moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"]}]})
        use_s3_storage(settings, BUCKET, endpoint)
        settings.CSP_MEDIA_ORIGINS = [endpoint]
        yield s3


def test_photos_go_straight_to_s3_and_are_confirmed(live_server, s3_server, page, fake_queue):
    get_user_model().objects.create_user("ada", password="pw-ada-12345")
    log_in(page, f"{live_server.url}/accounts/login/", "ada", "pw-ada-12345")
    expect(page.locator("#upload-form")).to_have_attribute("data-direct", "/photos/direct/")
    expect(page.locator("#upload-form.js")).to_be_visible()  # upload.js has run

    page.evaluate(DROP, [dropped("grace_hopper", "rocket") + [
        {"name": "fake.jpg", "type": "image/jpeg", "data": base64.b64encode(b"<html>not a photo</html>").decode()}]])

    expect(page.locator('#upload-progress li[data-result="accepted"]')).to_have_count(2, timeout=30_000)
    expect(page.locator('#upload-progress li[data-result="rejected"]')).to_contain_text("fake.jpg is not an image we can read")
    expect(page.locator(".photo", has_text="grace_hopper.jpg")).to_be_visible()
    keys = sorted(o["Key"] for o in s3_server.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    photos = Photo.objects.order_by("original_filename")
    assert [p.original_filename for p in photos] == ["grace_hopper.jpg", "rocket.jpg"]
    assert keys == sorted(p.image.name for p in photos)  # the fake one was deleted from the bucket
