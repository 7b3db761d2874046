"""The whole AWS path offline: upload through the Django form -> S3 -> SQS -> the Lambda
handler -> DynamoDB -> sync -> labels visible in the admin. moto's server stands in for
S3, SQS and DynamoDB; LocalRekognition for Amazon Rekognition."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from infra.local_aws import LambdaRunner, create_resources
from photos import sync
from photos.models import Photo
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_aws(settings, monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        aws = create_resources(f"http://127.0.0.1:{port}", prefix=f"e2e{port}")
        for key, value in aws.django_env().items():
            monkeypatch.setenv(key, value)
        settings.PHOTOS_PIPELINE = "aws"
        settings.PHOTOS_STORAGE = "s3"
        settings.AWS_ENDPOINT_URL = aws.endpoint
        settings.AWS_STORAGE_BUCKET_NAME = aws.bucket
        settings.LABELS_TABLE_NAME = aws.table
        settings.STORAGES = {**settings.STORAGES, "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": aws.bucket, "region_name": "us-east-1", "endpoint_url": aws.endpoint,
                        "file_overwrite": False, "default_acl": None, "querystring_auth": True,
                        "addressing_style": "path", "signature_version": "s3v4"}}}
        yield aws
    finally:
        server.stop()


def test_upload_to_labels_in_the_admin_through_the_aws_path(local_aws, client, fake_queue):
    user = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(user)

    response = client.post("/photos/", {"photos": [SimpleUploadedFile("Grace Hopper.jpg", photo_bytes("grace_hopper"), "image/jpeg")]})
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.status == Photo.Status.UPLOADED  # no local analysis in aws mode
    assert [name for name, _ in fake_queue.sent] == ["photos.tasks.make_thumbnail"]

    runner = LambdaRunner(local_aws)
    delivered = {"received": 0, "failed": 0}
    for _ in range(5):  # the s3:TestEvent and the upload's event
        got = runner.poll_once()
        delivered = {k: delivered[k] + got[k] for k in delivered}
    assert delivered["failed"] == 0 and delivered["received"] >= 2

    result = sync.sync_labels()
    assert result.applied == 1

    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED
    assert photo.labels.filter(name="Face").exists()
    page = client.get("/admin/photos/photo/").content.decode()
    assert "Face" in page and "Grace Hopper.jpg" in page

    # The admin's refresh button reads the same record back (one GetItem).
    refresh = client.post(f"/admin/photos/photo/{photo.pk}/refresh/", follow=True)
    assert "Already up to date with DynamoDB." in refresh.content.decode()
