"""Photos erased outside the app: a tombstone read by the sync (an S3 ObjectRemoved
event, or an erasure the app made itself whose row is still here) removes the row, on
the audit record, and queues every stored file of the key for erasure: the object's
remaining versions, and what the app made from it."""

from __future__ import annotations

import logging

from ..models import AuditEvent, Photo
from ..renditions import derived_names
from django.db import transaction

from .erasures import erasure_queue

logger = logging.getLogger(__name__)


def photos_erased(*, keys: list[str]) -> int:
    """Photos whose objects were erased: their rows go too, on the audit record; every
    key's stored files (all versions of the object, its thumbnail and rendition) go
    through the erasure outbox: finish_erasures deletes them (within 5 minutes), not the
    sync itself, which a mass deletion must not stall. A key with no row is still
    checked: a delete marker leaves the old versions behind. Returns how many rows went."""
    with transaction.atomic():  # the audit entry, the row's delete and the outbox row together
        return _photos_erased(keys)


def _photos_erased(keys: list[str]) -> int:
    removed = 0
    photos = {p.image.name: p for p in Photo.objects.filter(image__in=keys).only(
        "id", "original_filename", "image", "thumbnail", "uid", "kind")}
    for key in dict.fromkeys(keys):
        names = [key]
        photo = photos.get(key)
        if photo is not None:
            AuditEvent.objects.create(action=AuditEvent.Action.DELETE, actor=None, note=f"{photo.original_filename[:150]} "
                                      "(its object was deleted from the bucket)", before={"key": key, "uid": str(photo.uid)})
            names += derived_names(photo)
            photo.delete()
            removed += 1
        erasure_queue(key=key, names=names, reason="erased (tombstone)")
    return removed
