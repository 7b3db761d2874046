"""An image that claims more pixels than Pillow will decode (a decompression bomb) is a
FAILED record or a 404, never a crash or a retry loop (review of issue 11/12's change)."""

from __future__ import annotations

import struct
import zlib

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db.models import Q
from django.utils import timezone

from infra.functions.labeler.rendition import RenditionError, analysis_rendition
from photos.services.erasure import _erase
from photos.pipelines.local import photo_analyze
from photos.models import Photo

pytestmark = pytest.mark.django_db


def bomb_png(side: int = 20_000) -> bytes:
    """A few hundred bytes announcing side x side pixels (over Pillow's ~179 MP limit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_the_rendition_refuses_a_bomb_with_a_reason():
    with pytest.raises(RenditionError) as refused:
        analysis_rendition(bomb_png(), max_pixels=10**12)

    assert refused.value.code == "TooManyPixels"


def test_the_app_answers_404_and_the_local_analysis_records_why(client):
    owner = get_user_model().objects.create_user("owner")
    photo = Photo(owner=owner, original_filename="bomb.webp", content_type="image/webp", size=300)
    photo.image.save("bomb.webp", ContentFile(bomb_png()))
    client.force_login(owner)

    assert client.get(f"/photos/{photo.uid}/display/").status_code == 404
    from photos.renditions import make_thumbnail

    assert make_thumbnail(photo.id) is None  # logged, not a crash
    photo_analyze(photo_id=photo.id)
    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED and "TooManyPixels" in photo.status_reason + str(photo.records.first().payload)


def test_a_photo_restored_while_the_trash_was_being_emptied_is_kept():
    owner = get_user_model().objects.create_user("owner")
    photo = Photo.objects.create(owner=owner, image="uploads/p.jpg", original_filename="p.jpg")
    cutoff = timezone.now()

    assert _erase(photo.id, actor=None, only=Q(trashed_at__lt=cutoff)) is False  # restored: not in the trash
    assert Photo.objects.filter(pk=photo.pk).exists()
