"""An owner's library: their photos a page at a time, one photo's page with its
moderation outcome, what they reported, and who gets the original file."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Prefetch, Q, QuerySet

from ..models import REMOVAL_REASONS, AuditEvent, DetectedText, Flag, Label, Photo
from .labels import visible_labels_q
from .titles import reading_order_by


def photos_for_owner(*, owner, trashed: bool | None = False) -> QuerySet[Photo]:
    """The owner's photos, newest first (removed ones too, so the owner sees what
    happened), with their visible labels prefetched (two queries). ``trashed``: only
    those out of the trash (False), only those in it (True), or both (None)."""
    photos = Photo.objects.filter(owner=owner)
    if trashed is not None:
        photos = photos.filter(trashed_at__isnull=not trashed)
    return (
        photos
        .prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.filter(visible_labels_q()).order_by("-confidence", "name"),
                to_attr="visible_labels",
            )
        )
    )


def photo_gets_original(*, user, photo: Photo) -> bool:
    """The uploaded file, with whatever EXIF/GPS it carries, is its owner's (and
    superusers'); everyone else sees the stripped display rendition."""
    return user.is_authenticated and (user.is_superuser or (photo.owner_id is not None and photo.owner_id == user.pk))


MODERATION_DECISIONS = ("clear", "remove", "escalate")


def owner_photo(*, owner, uid) -> Photo | None:
    """One of the owner's photos for its page: visible labels (with their boxes), the
    lines of text found in it, the latest moderation decision (the removal reason and
    the moderator's note) and its appeal, in four queries."""
    photo = (
        photos_for_owner(owner=owner, trashed=None)
        .prefetch_related(Prefetch("texts", queryset=DetectedText.objects.filter(type=DetectedText.Type.LINE)
                                   .order_by(*reading_order_by()), to_attr="lines"))
        .filter(uid=uid)
        .first()
    )
    if photo is not None:
        events = list(AuditEvent.objects.filter(photo=photo, action__in=(*MODERATION_DECISIONS, AuditEvent.Action.APPEAL))
                      .order_by("-at", "-id"))
        photo.decision = next((e for e in events if e.action in MODERATION_DECISIONS), None)
        photo.removal_reason = removal_reason(photo.decision)
        removal = next((e for e in events if e.action == AuditEvent.Action.REMOVE), None)
        photo.appeal = next((e for e in events if e.action == AuditEvent.Action.APPEAL
                             and (removal is None or (e.at, e.id) > (removal.at, removal.id))), None)
        # The removal was the decision on an appeal: final.
        photo.appeal_decided = removal is not None and bool((removal.after or {}).get("on_appeal"))
    return photo


def reports_by(*, reporter) -> QuerySet:
    """The reports a user made, newest first, with their photos and their visible labels
    (for the photos' public titles; two queries)."""
    return (Flag.objects.filter(reporter=reporter).select_related("photo").order_by("-created_at", "-id")
            .prefetch_related(Prefetch("photo__labels", queryset=Label.objects.filter(visible_labels_q())
                                       .order_by("-confidence", "name"), to_attr="visible_labels")))


PAGE_SIZE = 48
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


def owner_page(*, owner, cursor: str = "", trashed: bool = False, size: int = PAGE_SIZE,
               by: str = "created_at") -> tuple[list[Photo], str]:
    """A page of the owner's photos after ``cursor``, newest first by ``by`` (created_at:
    uploaded; taken_at: the timeline), keyset on (by, id): the same cost on page 1 and
    page 500; and the cursor of the next page ("" on the last). A cursor that does not
    parse starts from the newest."""
    assert by in ("created_at", "taken_at")
    photos = photos_for_owner(owner=owner, trashed=trashed).order_by(f"-{by}", "-id")
    try:
        stamp, _, ident = cursor.partition("_")
        after = EPOCH + timedelta(microseconds=int(stamp)), int(ident)
    except (ValueError, OverflowError):
        after = None
    if after is not None:
        # The OR is the exact keyset; by <= t makes it an index range scan too.
        photos = photos.filter(Q(**{f"{by}__lt": after[0]}) | Q(**{by: after[0], "id__lt": after[1]}),
                               **{f"{by}__lte": after[0]})
    page = list(photos[: size + 1])
    if len(page) <= size:
        return page, ""
    last = page[size - 1]
    return page[:size], photo_cursor(last, by)


def photo_cursor(photo: Photo, by: str = "created_at") -> str:
    """Where a page ends: the ordering time in whole microseconds (exact, no float) and the id."""
    return f"{(getattr(photo, by) - EPOCH) // timedelta(microseconds=1)}_{photo.id}"


def removal_reason(event: AuditEvent | None) -> str:
    """The owner-facing reason of a removal decision ("" for other decisions)."""
    if event is None or event.action != AuditEvent.Action.REMOVE:
        return ""
    return REMOVAL_REASONS.get((event.after or {}).get("reason", ""), "")
