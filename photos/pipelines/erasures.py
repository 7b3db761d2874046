"""The erasure outbox: an erased photo's stored files (the original, its thumbnail and
rendition; on S3 every version of each) are queued in the erasing transaction and
deleted after it commits, then retried with back-off until storage shows none is left.
A storage outage, a DeleteObjects that answers 200 with Errors, a worker killed between
the commit and the delete: each leaves a row here, never bytes nobody will delete."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..models import PendingErasure
from .storage import media_storage

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 3600
# A claimed row is retried after this if its worker died mid-erasure.
CLAIM_SECONDS = 600


def erasure_queue(*, key: str, names: list[str], reason: str) -> PendingErasure:
    """Queue ``names`` (storage names of the photo at ``key``) for erasure: call it inside
    the transaction that erases the photo, so the row exists exactly when the erasure
    does. A second erasure of the same key adds its names to the pending one."""
    names = [n for n in dict.fromkeys(names) if n]
    with transaction.atomic():
        pending, created = PendingErasure.objects.select_for_update().get_or_create(
            key=key, defaults={"names": names, "reason": reason[:200]})
        if not created:
            pending.names = list(dict.fromkeys([*pending.names, *names]))
            pending.next_attempt_at = timezone.now()
            pending.save(update_fields=["names", "next_attempt_at"])
    return pending


def erasure_soon(pending_id: int) -> None:
    """Try the erasure once the current transaction commits (the beat task retries it
    if this attempt fails or never runs)."""
    transaction.on_commit(lambda: erasure_attempt(pending_id))


def erasure_attempt(pending_id: int, *, now=None) -> bool:
    """Delete every name of one pending erasure; True once storage shows none is left
    (the row is then gone), otherwise the failure is on the row and it is retried later."""
    pending = PendingErasure.objects.filter(id=pending_id).first()
    if pending is None:
        return True
    storage = media_storage()
    try:
        for name in pending.names:
            storage.delete(name)
    except Exception as exc:
        now = now or timezone.now()
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(pending.attempts, 20))
        PendingErasure.objects.filter(id=pending.id).update(
            attempts=pending.attempts + 1, next_attempt_at=now + timedelta(seconds=delay),
            last_error=f"{type(exc).__name__}: {exc}"[:2000])
        log = logger.error if pending.attempts + 1 >= 5 else logger.warning
        log("erasure of %s not finished (attempt %s, next in %s s): %s", pending.key, pending.attempts + 1, delay, exc)
        return False
    # Only if no erasure of the same key merged more names in meanwhile (then it stays,
    # and the next attempt deletes those too).
    if not PendingErasure.objects.filter(id=pending.id, names=pending.names).delete()[0]:
        return False
    return True


def erasures_finish(*, now=None, batch: int = 100) -> dict[str, int]:
    """Retry the erasures that are due: each row is claimed first (two workers never
    erase the same one at once) and tried outside any transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(PendingErasure.objects.select_for_update(skip_locked=True)
                   .filter(next_attempt_at__lte=now).order_by("next_attempt_at").values_list("id", flat=True)[:batch])
        PendingErasure.objects.filter(id__in=due).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    finished = sum(1 for pid in due if erasure_attempt(pid, now=now))
    return {"tried": len(due), "finished": finished, "pending": PendingErasure.objects.count()}
