"""Upload -> analysis -> labels visible, with a real Celery worker on the real Redis
and PostgreSQL: no eager mode, no fakes."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from photos.models import Photo
from tests.samples import photo_bytes

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=300.0, interval=0.1):
    """Until the real worker has done it; the timeout only keeps a broken run from hanging
    (generous: a busy machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_upload_is_labelled_by_a_real_worker(real_celery_worker, client):
    assert connection.vendor == "postgresql"
    user = get_user_model().objects.create_user("alice", password="x")
    client.force_login(user)

    response = client.post("/photos/", {"photos": [
        SimpleUploadedFile("grace.jpg", photo_bytes("grace_hopper"), "image/jpeg"),
        SimpleUploadedFile("cat.png", photo_bytes("chelsea"), "image/png"),
    ]})
    assert response.status_code == 302

    assert wait_for(lambda: Photo.objects.filter(status=Photo.Status.LABELED).count() == 2), list(
        Photo.objects.values_list("original_filename", "status", "status_reason"))
    assert wait_for(lambda: not Photo.objects.filter(thumbnail="").exists())
    page = client.get("/photos/").content.decode()
    assert "Face" in page
    grace = Photo.objects.get(original_filename="grace.jpg")
    assert grace.labels.filter(name="Face").exists()
    assert not Photo.objects.get(original_filename="cat.png").labels.filter(name="Face").exists()
    status = client.get("/photos/status/", {"ids": str(grace.uid)}).json()["photos"][0]
    assert status["status"] == "labeled" and "Face" in [lb["name"] for lb in status["labels"]]
    assert status["thumbnail"] == f"/photos/{grace.uid}/thumbnail/"
