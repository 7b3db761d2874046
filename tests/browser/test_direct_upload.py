"""Direct browser-to-S3 uploads in Chromium: the page gets a presigned POST, sends the
file straight to the bucket (moto's S3 server here) with a progress bar, and confirms."""

from __future__ import annotations

import base64
import socket

import boto3
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from photos.models import Photo
from tests.browser.test_site_user import DROP, dropped

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BUCKET = "direct-upload-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(settings, monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["GET", "PUT", "POST", "HEAD"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"]}]})
    settings.PHOTOS_STORAGE = "s3"
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.CSP_MEDIA_ORIGINS = [endpoint]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "region_name": "us-east-1", "endpoint_url": endpoint, "file_overwrite": False,
                    "default_acl": None, "querystring_auth": True, "addressing_style": "path", "signature_version": "s3v4"}}}
    yield s3
    server.stop()


def test_photos_go_straight_to_s3_and_are_confirmed(live_server, s3_server, page, fake_queue):
    get_user_model().objects.create_user("ada", password="pw-ada-12345")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "pw-ada-12345")
    page.click("button[type=submit]")
    expect(page.locator("#dropzone")).to_have_attribute("data-direct", "/photos/direct/")
    expect(page.locator("#dropzone")).to_be_visible()  # upload.js has run

    page.evaluate(DROP, [dropped("grace_hopper", "rocket") + [
        {"name": "fake.jpg", "type": "image/jpeg", "data": base64.b64encode(b"<html>not a photo</html>").decode()}]])

    expect(page.locator('#upload-progress li[data-result="accepted"]')).to_have_count(2, timeout=30_000)
    expect(page.locator('#upload-progress li[data-result="rejected"]')).to_contain_text("fake.jpg is not an image we can read")
    expect(page.locator(".photo", has_text="grace_hopper.jpg")).to_be_visible()
    keys = sorted(o["Key"] for o in s3_server.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    photos = Photo.objects.order_by("original_filename")
    assert [p.original_filename for p in photos] == ["grace_hopper.jpg", "rocket.jpg"]
    assert keys == sorted(p.image.name for p in photos)  # the fake one was deleted from the bucket
