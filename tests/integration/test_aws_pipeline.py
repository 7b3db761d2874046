"""The whole AWS path offline: upload through the Django form -> S3 -> SQS -> the Lambda
handler -> DynamoDB -> sync -> labels visible in the admin. moto's server stands in for
S3, SQS and DynamoDB; LocalRekognition for Amazon Rekognition."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from infra.local_aws import LambdaRunner, create_resources
from photos import sync
from photos.models import Photo
from tests.emulators import moto_server, use_s3_storage
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_aws(settings, monkeypatch):
    with moto_server() as endpoint:
        aws = create_resources(endpoint, prefix=f"e2e{endpoint.rsplit(':', 1)[1]}")
        for key, value in aws.django_env().items():
            monkeypatch.setenv(key, value)
        settings.PHOTOS_PIPELINE = "aws"
        settings.AWS_ENDPOINT_URL = aws.endpoint
        settings.LABELS_TABLE_NAME = aws.table
        use_s3_storage(settings, aws.bucket, aws.endpoint)
        yield aws


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
