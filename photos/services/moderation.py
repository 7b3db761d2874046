"""Flags and moderators' decisions. Every change is recorded as an AuditEvent.

A moderator opening a case takes a soft lock on it (LOCK_MINUTES); a second moderator
sees who holds it and cannot decide until it is released or expires, so two people never
decide the same photo at once. Decisions: clear (back to public, with a snapshot of the
moderation labels seen, which later analyses must exceed to re-flag), remove (hidden
for good; files are kept for appeals), escalate (stays hidden, for a senior decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..models import REMOVAL_REASONS, AuditEvent, Flag, Photo

LOCK_MINUTES = 10
DECISIONS = {
    "clear": (Photo.Moderation.CLEARED, AuditEvent.Action.CLEAR),
    "remove": (Photo.Moderation.REMOVED, AuditEvent.Action.REMOVE),
    "escalate": (Photo.Moderation.ESCALATED, AuditEvent.Action.ESCALATE),
}


APPEAL_MAX_CHARS = 2000


class ModerationError(ValueError):
    """The decision cannot be made now; the message says why."""


@dataclass(frozen=True)
class Lock:
    acquired: bool
    holder_id: int | None
    until: object | None


def case_lock(*, photo_id: int, actor) -> Lock:
    """Take (or renew) the soft lock unless another moderator holds an unexpired one."""
    now = timezone.now()
    until = now + timedelta(minutes=LOCK_MINUTES)
    taken = Photo.objects.filter(
        Q(id=photo_id)
        & (Q(moderation_locked_by__isnull=True) | Q(moderation_locked_by=actor) | Q(moderation_locked_until__lt=now))
    ).update(moderation_locked_by=actor, moderation_locked_until=until)
    if taken:
        return Lock(True, actor.pk, until)
    holder = Photo.objects.filter(id=photo_id).values_list("moderation_locked_by", "moderation_locked_until").first()
    return Lock(False, holder[0] if holder else None, holder[1] if holder else None)


def case_release(*, photo_id: int, actor) -> None:
    Photo.objects.filter(id=photo_id, moderation_locked_by=actor).update(moderation_locked_by=None, moderation_locked_until=None)


@transaction.atomic
def photo_moderate(*, photo_id: int, decision: str, actor, note: str = "", reason: str = "",
                   seen_state: str | None = None) -> Photo:
    """Clear, remove or escalate a photo with an open case (flagged, escalated, appealed
    or reported). The actor must hold the case's lock (it is taken here if free). Open
    flags are resolved by clear and remove. A removal needs one of REMOVAL_REASONS: the
    owner sees it, with the note. A decision on an appealed photo is final (no second
    appeal). ``seen_state``: the moderation state the decider's page showed; a case that
    changed since (another moderator decided it) is refused, never decided over."""
    if decision not in DECISIONS:
        raise ModerationError(f"Unknown decision {decision!r}.")
    if decision == "remove" and reason not in REMOVAL_REASONS:
        raise ModerationError("Choose the reason for the removal: the owner sees it.")
    photo = Photo.objects.select_for_update().filter(id=photo_id).first()
    if photo is None:
        raise ModerationError("The photo no longer exists.")
    now = timezone.now()
    held_by_other = (
        photo.moderation_locked_by_id not in (None, actor.pk)
        and photo.moderation_locked_until is not None
        and photo.moderation_locked_until > now
    )
    if held_by_other:
        raise ModerationError("Another moderator is deciding this photo; wait until they finish or their lock expires.")
    if seen_state is not None and seen_state != photo.moderation_state:
        raise ModerationError(f"This case changed since you opened it: it is now "
                              f"{Photo.Moderation(photo.moderation_state).label.lower()}. Look at it again.")
    state, action = DECISIONS[decision]
    reported = Flag.objects.filter(photo_id=photo_id, resolved_at__isnull=True).exists()
    if decision == "clear" and photo.moderation_state not in Photo.AWAITING_MODERATION and not reported:
        raise ModerationError("Only a flagged, escalated or reported photo can be cleared.")
    if decision == "escalate" and photo.moderation_state != Photo.Moderation.FLAGGED and not (
        reported and photo.moderation_state in (Photo.Moderation.NONE, Photo.Moderation.CLEARED)
    ):
        raise ModerationError("Only a flagged or reported photo can be escalated (an appeal is cleared or removed).")
    if photo.moderation_state == Photo.Moderation.REMOVED:
        raise ModerationError("The photo has already been removed.")
    if decision == "remove" and photo.moderation_state not in Photo.AWAITING_MODERATION and not reported:
        raise ModerationError("Only a flagged, escalated, appealed or reported photo can be removed; "
                              "report it first (the report is on the record).")
    before = {"moderation_state": photo.moderation_state}
    seen = {name: confidence for name, confidence in photo.moderation_labels.values_list("name", "confidence")}
    photo.moderation_state = state
    if decision == "clear":
        photo.cleared_moderation = seen
    photo.moderation_locked_by = None
    photo.moderation_locked_until = None
    photo.save(update_fields=["moderation_state", "cleared_moderation", "moderation_locked_by", "moderation_locked_until", "updated_at"])
    if decision in ("clear", "remove"):
        Flag.objects.filter(photo_id=photo_id, resolved_at__isnull=True).update(resolved_at=now)
    after = {"moderation_state": state, "moderation_labels": seen}
    if decision == "remove":
        after["reason"] = reason
        if before["moderation_state"] == Photo.Moderation.APPEALED:
            after["on_appeal"] = True  # final: no appeal against the decision on an appeal
    AuditEvent.objects.create(photo=photo, action=action, actor=actor, at=now, note=note, before=before, after=after)
    return photo


def photo_appeal(*, photo_id: int, actor, text: str) -> Photo:
    """The owner of a removed photo asks for another look: the photo goes back to the
    moderation queue (still hidden) with their words on the record. One appeal per
    removal; the decision on it is final (clear or remove: an appeal is not escalated)."""
    text = (text or "").strip()
    if not text:
        raise ModerationError("Say why the photo should be restored.")
    if len(text) > APPEAL_MAX_CHARS:
        raise ModerationError(f"Keep the appeal under {APPEAL_MAX_CHARS} characters.")
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(id=photo_id).first()
        if photo is None or photo.owner_id is None or photo.owner_id != actor.pk:
            raise ModerationError("No such photo.")
        # One appeal per removal: a photo restored and removed again may be appealed again,
        # but a removal decided on an appeal is final.
        last_removal = (AuditEvent.objects.filter(photo=photo, action=AuditEvent.Action.REMOVE)
                        .order_by("-at", "-id").first())
        appeals = AuditEvent.objects.filter(photo=photo, action=AuditEvent.Action.APPEAL)
        if last_removal is not None:
            appeals = appeals.filter(at__gte=last_removal.at)
        if appeals.exists() or (last_removal is not None and (last_removal.after or {}).get("on_appeal")):
            raise ModerationError("You appealed already: a moderator will look again, and that decision is final."
                                  if photo.moderation_state == Photo.Moderation.APPEALED
                                  else "This photo was appealed already; the decision on the appeal is final.")
        if photo.moderation_state != Photo.Moderation.REMOVED:
            raise ModerationError("Only a removed photo can be appealed.")
        photo.moderation_state = Photo.Moderation.APPEALED
        photo.save(update_fields=["moderation_state", "updated_at"])
        AuditEvent.objects.create(photo=photo, action=AuditEvent.Action.APPEAL, actor=actor, note=text,
                                  before={"moderation_state": Photo.Moderation.REMOVED},
                                  after={"moderation_state": Photo.Moderation.APPEALED})
    return photo


def removal_reason(event: AuditEvent | None) -> str:
    """The owner-facing reason of a removal decision ("" for other decisions)."""
    if event is None or event.action != AuditEvent.Action.REMOVE:
        return ""
    return REMOVAL_REASONS.get((event.after or {}).get("reason", ""), "")


def report_outcome(flag: Flag) -> str:
    """What became of a report, as its reporter sees it (no moderator names, no notes)."""
    state = flag.photo.moderation_state
    if flag.resolved_at is None:
        return ("With senior moderators" if state == Photo.Moderation.ESCALATED
                else "Waiting for a moderator")
    if state in Photo.WITHHELD:
        return "Removed by a moderator"
    return "Reviewed by a moderator: it stays up"


def open_reports_q() -> Q:
    """Photos with reports no moderator has decided on yet."""
    return Q(Exists(Flag.objects.filter(photo=OuterRef("pk"), resolved_at__isnull=True)))


def awaiting_moderation_q() -> Q:
    """The moderation queue: flagged or escalated photos, and visible photos with open
    reports (reported, but not on enough evidence to hide them)."""
    # One IN over a UNION of two indexed lookups, not an OR with a correlated EXISTS:
    # PostgreSQL ran that EXISTS once per photo (a 160 ms sequential scan over 100,000).
    awaiting = Photo.objects.filter(moderation_state__in=Photo.AWAITING_MODERATION).order_by().values("pk")
    reported = Photo.objects.filter(
        moderation_state__in=(Photo.Moderation.NONE, Photo.Moderation.CLEARED),
        pk__in=Flag.objects.filter(resolved_at__isnull=True).values("photo_id"),
    ).order_by().values("pk")  # no ORDER BY inside a UNION (SQLite refuses it)
    return Q(pk__in=awaiting.union(reported))


def reports_hide(photo: Photo, reporter) -> bool:
    """A report hides a photo only on evidence, never on one new account's word: a staff
    member's report, or REPORTS_TO_HIDE distinct open reports from accounts at least
    REPORTER_MIN_ACCOUNT_HOURS old."""
    if reporter.is_staff and reporter.is_active:
        return True
    established = timezone.now() - timedelta(hours=settings.REPORTER_MIN_ACCOUNT_HOURS)
    standing = Flag.objects.filter(
        photo=photo, resolved_at__isnull=True, reporter__is_active=True, reporter__date_joined__lte=established
    ).values("reporter").distinct().count()
    return standing >= settings.REPORTS_TO_HIDE


@transaction.atomic
def photo_flag(*, photo_id: int, reporter, reason: str, note: str = "") -> bool:
    """Record a person's report. Repeat reports by one person count once (returns
    False). Every report puts the photo in the moderators' queue; it is hidden from
    public pages only on evidence (``reports_hide``)."""
    if reason not in Flag.Reason.values:
        raise ModerationError(f"Unknown reason {reason!r}.")
    photo = Photo.objects.select_for_update().filter(id=photo_id).first()
    if photo is None:
        raise ModerationError("The photo no longer exists.")
    flag, created = Flag.objects.get_or_create(photo=photo, reporter=reporter, defaults={"reason": reason, "note": note[:2000]})
    if not created:
        return False
    now = timezone.now()
    before = photo.moderation_state
    if photo.moderation_state in (Photo.Moderation.NONE, Photo.Moderation.CLEARED) and reports_hide(photo, reporter):
        photo.moderation_state = Photo.Moderation.FLAGGED
        photo.flagged_at = now
        photo.save(update_fields=["moderation_state", "flagged_at", "updated_at"])
    AuditEvent.objects.create(
        photo=photo, action=AuditEvent.Action.FLAG, actor=reporter, at=now, note=note[:2000],
        before={"moderation_state": before}, after={"moderation_state": photo.moderation_state, "reason": reason},
    )
    return True
