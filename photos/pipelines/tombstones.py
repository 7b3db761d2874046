"""Photos erased outside the app: a tombstone read by the sync (an S3 ObjectRemoved
event, or an erasure the app made itself whose row is still here) removes the row, on
the audit record, and what the app made from the object."""

from __future__ import annotations

import logging

from django.db import transaction

from ..models import AuditEvent, Photo
from ..renditions import display_rendition_name
from .storage import media_storage

logger = logging.getLogger(__name__)


def photos_erased(*, keys: list[str]) -> int:
    """Photos whose objects were erased: their rows go too, on the audit record, and
    once that commits their thumbnails and renditions. Unknown keys are nothing to do."""
    removed, leftovers = 0, []
    for photo in Photo.objects.filter(image__in=keys).only("id", "original_filename", "image", "thumbnail", "uid"):
        AuditEvent.objects.create(action=AuditEvent.Action.DELETE, actor=None, note=f"{photo.original_filename[:150]} "
                                  "(its object was deleted from the bucket)", before={"key": photo.image.name, "uid": str(photo.uid)})
        leftovers += [n for n in (photo.thumbnail.name if photo.thumbnail else "", display_rendition_name(photo)) if n]
        photo.delete()
        removed += 1

    def cleanup():
        for name in leftovers:
            try:
                media_storage().delete(name)
            except Exception as exc:
                logger.warning("erased photo's %s could not be removed: %s", name, exc)

    if leftovers:
        transaction.on_commit(cleanup)
    return removed
