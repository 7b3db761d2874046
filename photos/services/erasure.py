"""Deleting a photo for good: the one erasure path, whether its owner deletes it, a
superuser does, or the trash is emptied. The analysis is made unrecoverable before the
row goes (a tombstone in AWS), in the row's transaction, with the files queued in the
erasure outbox (photos/pipelines/erasures.py); they go once it commits, retried until
none is left."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import AuditEvent, Photo
from ..pipelines import pipeline
from ..pipelines.erasures import erasure_queue, erasure_soon
from ..renditions import derived_names
from .photos import TRASH_DAYS

logger = logging.getLogger(__name__)


def photos_purge_trash(*, now=None, batch: int = 200) -> int:
    """Erase photos that have been in the trash for TRASH_DAYS, through the same path as
    a delete (every version of every object, the tombstone in AWS), on the record.
    Returns how many were erased in this run (at most ``batch``)."""
    cutoff = (now or timezone.now()) - timedelta(days=TRASH_DAYS)
    ids = list(Photo.objects.filter(trashed_at__lt=cutoff).order_by("trashed_at").values_list("id", flat=True)[:batch])
    erased = 0
    for pid in ids:
        try:
            # Still in the trash, checked under the row's lock: a restore in between wins.
            erased += _erase(pid, actor=None, note=f"trash emptied after {TRASH_DAYS} days", only=Q(trashed_at__lt=cutoff))
        except Exception:  # one photo that cannot be erased now must not stop the rest
            logger.exception("photo %s: could not be erased from the trash; retried at the next run", pid)
    return erased


def photo_delete(*, photo_id: int, actor) -> bool:
    """Delete a photo for good: its row and everything hanging off it, then, once that
    commits, its image, thumbnail and rendition in storage (every version, on S3) and, in
    the AWS pipeline, its DynamoDB record, replaced by an erasure tombstone. Owners
    delete their own photos; others need the delete_photo permission (superusers): a
    moderator removes a photo through moderation, which keeps its files for appeals.
    Recorded as an AuditEvent. False if not allowed or not found."""
    photo = Photo.objects.filter(id=photo_id).only("id", "owner_id").first()
    owner = photo is not None and photo.owner_id is not None and photo.owner_id == actor.pk
    if photo is None or not (owner or actor.has_perm("photos.delete_photo")):
        return False
    return _erase(photo_id, actor=actor)


def _erase(photo_id: int, *, actor, note: str = "", only: Q | None = None) -> bool:
    """The one erasure path (delete, emptied trash): permission is the caller's check;
    ``only`` is a condition the row must still meet under its lock."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(Q(id=photo_id) & (only or Q())).first()
        if photo is None:
            return False
        names = [name for name in (photo.image.name, *derived_names(photo)) if name]
        key, filename = photo.key, photo.original_filename
        AuditEvent.objects.create(action=AuditEvent.Action.DELETE, actor=actor,
                                  note=f"{filename[:150]} ({note})" if note else filename[:200],
                                  before={"key": key, "uid": str(photo.uid)}, after={})
        # The tombstone before the row goes: if it cannot be written, the transaction
        # rolls back and the photo stays (nothing half-erased); once it is, no replayed
        # S3 event, retry or reconcile can bring the photo back.
        pipeline().erase(key=key)
        # The files go after the commit, through the outbox: retried until storage
        # shows no version of any of them is left.
        pending = erasure_queue(key=key, names=names, reason=note or "deleted")
        # The owner's own words (titles, captions) go with the photo: the record keeps
        # that they were changed, and when, not what they said.
        AuditEvent.objects.filter(photo=photo, action=AuditEvent.Action.DESCRIBE).update(
            before={}, after={}, note="erased with the photo")
        photo.delete()
    erasure_soon(pending.id)
    return True
