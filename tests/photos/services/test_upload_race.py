"""The duplicate-upload race on PostgreSQL, with real threads (issue #10): the unique
constraint on (owner, sha256) decides it, and the losers hear "already in your photos".

PostgreSQL only: the SQLite test database is in memory with a shared cache, where
concurrent writers fail at once ("database table is locked") instead of waiting as the
file database of `make run` does (WAL, busy timeout, IMMEDIATE transactions)."""

from __future__ import annotations

import pytest
from django.db import connection

from photos.models import Photo


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_file_store_it_once(media_root):
    """Eight requests with the same file at the same moment (real threads, each with its
    own database connection): one photo, seven 'already in your photos', one file."""
    assert connection.vendor == "postgresql", "this test needs PostgreSQL (make test provides it)"
    import threading

    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from photos.services.uploads import photos_receive
    from tests.samples import photo_bytes

    owner = get_user_model().objects.create_user("racer", password="x")
    data = photo_bytes("chelsea")
    barrier = threading.Barrier(8)
    outcomes, errors = [], []

    def upload():
        try:
            barrier.wait()
            outcomes.append(photos_receive(owner=owner, files=[SimpleUploadedFile("chelsea.png", data)], visibility="private"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(len(o.accepted) for o in outcomes) == 1
    assert all(
        "already in your photos" in m for o in outcomes for _, m in o.rejected)
    assert sum(len(o.rejected) for o in outcomes) == 7
    assert Photo.objects.filter(owner=owner).count() == 1
    stored = [p for p in (media_root / "uploads").rglob("*") if p.is_file()]
    assert len(stored) == 1
