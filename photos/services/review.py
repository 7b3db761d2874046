"""Editors' label decisions. Every function here works on many labels at once in a
constant number of queries, and writes an AuditEvent per change (who, when, before,
after).

Decisions are made to survive re-analysis (DESIGN.md, "Curation rules"): a rejected
machine label stays in the table, rejected, so the sync never brings it back as pending;
renaming or merging rejects the machine label and approves the target name (an editor
label when the photo has none of that name).
"""

from __future__ import annotations

import unicodedata

from typing import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import AuditEvent, Label
from ..selectors.labels import forget_label_choices, pending_machine_labels_q

MAX_NAME = 100


class ReviewError(ValueError):
    """A decision that cannot be made as asked; the message is for the editor."""


def _state(label: Label) -> dict:
    return {"name": label.name, "review_state": label.review_state, "source": label.source, "confidence": label.confidence}


def clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ReviewError("A label needs a name.")
    if not cleaned.isprintable() or any(unicodedata.category(c) == "Cf" for c in cleaned):
        raise ReviewError("Label names cannot hold control or invisible characters.")
    if len(cleaned) > MAX_NAME:
        raise ReviewError(f"Label names have at most {MAX_NAME} characters.")
    return cleaned


@transaction.atomic
def labels_decide(*, label_ids: Iterable[int], decision: str, actor, note: str = "") -> int:
    """Approve or reject labels (``decision`` is ``approved`` or ``rejected``). Labels
    already in that state are left alone. Approving a label also approves its parents
    still pending on the same photo (a dog is an animal: the queue shows Dog with its
    parents beside it, not each as an item); rejecting it leaves them for their own
    decision. Returns how many of the given labels changed. At most five queries."""
    transaction.on_commit(forget_label_choices)  # the admin's filter counts change
    if decision not in (Label.Review.APPROVED, Label.Review.REJECTED):
        raise ReviewError(f"Unknown decision {decision!r}.")
    labels = list(
        Label.objects.select_for_update().filter(id__in=list(label_ids)).exclude(review_state=decision)
    )
    if not labels:
        return 0
    chosen = len(labels)
    if decision == Label.Review.APPROVED:
        implied = Q()
        for lb in labels:
            if lb.parents:
                implied |= Q(photo_id=lb.photo_id, name__in=[str(p) for p in lb.parents])
        if implied:
            labels += list(Label.objects.select_for_update().filter(implied, pending_machine_labels_q())
                           .exclude(id__in=[lb.id for lb in labels]))
    now = timezone.now()
    Label.objects.filter(id__in=[lb.id for lb in labels]).update(review_state=decision, reviewed_by=actor, reviewed_at=now, updated_at=now)
    action = AuditEvent.Action.APPROVE if decision == Label.Review.APPROVED else AuditEvent.Action.REJECT
    AuditEvent.objects.bulk_create(
        AuditEvent(photo_id=lb.photo_id, label_name=lb.name, action=action, actor=actor, at=now,
                   before=_state(lb), after={**_state(lb), "review_state": decision},
                   note=note if n < chosen else f"{note} (with its kind)".strip())
        for n, lb in enumerate(labels)
    )
    return chosen


@transaction.atomic
def labels_merge(*, label_ids: Iterable[int], into: str, actor, note: str = "") -> int:
    """Merge labels into the name ``into`` on their photos: each merged label is
    rejected (so re-analysis cannot resurrect it) and the photo's ``into`` label is
    approved, created as an editor label if the photo has none. Merging a label into its
    own name approves it. One label is a rename. Returns how many labels were merged.
    Constant queries whatever the number of labels."""
    transaction.on_commit(forget_label_choices)  # the admin's filter counts change
    into = clean_name(into)
    labels = list(Label.objects.select_for_update().filter(id__in=list(label_ids)))
    if not labels:
        return 0
    # A rejected label was rejected, renamed or merged already (by another editor a moment
    # ago, whose page showed it too): renaming it again would leave the photo both names.
    gone = [lb for lb in labels if lb.review_state == Label.Review.REJECTED and lb.name != into]
    if gone and len(gone) == len(labels):
        names = ", ".join(sorted({lb.name for lb in gone}))
        raise ReviewError(f"{names} was already renamed, merged or rejected; reload the page to see it now.")
    labels = [lb for lb in labels if lb not in gone]
    now = timezone.now()
    photo_ids = {lb.photo_id for lb in labels}
    targets = {
        t.photo_id: t
        for t in Label.objects.select_for_update().filter(photo_id__in=photo_ids, name=into)
    }
    sources = [lb for lb in labels if lb.name != into]
    action = AuditEvent.Action.RENAME if len(labels) == 1 else AuditEvent.Action.MERGE
    events = []
    to_create = []
    approve_ids = []
    grown = []  # targets that gain the merged labels' boxes
    for photo_id in photo_ids:
        merged = [lb for lb in sources if lb.photo_id == photo_id]
        best = max((lb.confidence for lb in merged if lb.confidence is not None), default=None)
        target = targets.get(photo_id)
        if target is None:
            instances = [i for lb in merged for i in (lb.instances or [])]
            to_create.append(Label(
                photo_id=photo_id, name=into, confidence=best, instances=instances, source=Label.Source.EDITOR,
                review_state=Label.Review.APPROVED, reviewed_by=actor, reviewed_at=now,
            ))
            after = {"name": into, "review_state": Label.Review.APPROVED, "source": Label.Source.EDITOR, "confidence": best}
        else:
            instances = union_instances(target.instances, [i for lb in merged for i in (lb.instances or [])])
            if instances != (target.instances or []):
                # The merged labels' boxes join the target's. The label is the editor's from
                # now on: a re-analysis rewrites a machine label's boxes with its own.
                target.instances, target.source = instances, Label.Source.EDITOR
                target.review_state, target.reviewed_by, target.reviewed_at = Label.Review.APPROVED, actor, now
                target.updated_at, target.missing_from_latest = now, False
                grown.append(target)
            elif target.review_state != Label.Review.APPROVED:
                approve_ids.append(target.id)
            after = {**_state(target), "review_state": Label.Review.APPROVED, "boxes": len(target.instances or [])}
        for lb in merged:
            events.append(AuditEvent(photo_id=photo_id, label_name=lb.name, action=action, actor=actor, at=now,
                                     before=_state(lb), after={"merged_into": into, "review_state": Label.Review.REJECTED,
                                                               "target": after}, note=note))
        if not merged and target is not None and target.review_state != Label.Review.APPROVED:
            events.append(AuditEvent(photo_id=photo_id, label_name=into, action=AuditEvent.Action.APPROVE, actor=actor,
                                     at=now, before=_state(target), after=after, note=note))
    if sources:
        Label.objects.filter(id__in=[lb.id for lb in sources]).update(
            review_state=Label.Review.REJECTED, reviewed_by=actor, reviewed_at=now, updated_at=now
        )
    if approve_ids:
        Label.objects.filter(id__in=approve_ids).update(
            review_state=Label.Review.APPROVED, reviewed_by=actor, reviewed_at=now, updated_at=now, missing_from_latest=False
        )
    if grown:
        Label.objects.bulk_update(grown, ["instances", "source", "review_state", "reviewed_by", "reviewed_at",
                                          "updated_at", "missing_from_latest"])
    if to_create:
        Label.objects.bulk_create(to_create)
    AuditEvent.objects.bulk_create(events)
    return len(sources)


SAME_BOX_IOU = 0.8  # two boxes overlapping this much are one object seen twice


def union_instances(kept, added) -> list:
    """``kept`` instances and those of ``added`` that are not already there: a box that
    overlaps one already kept by SAME_BOX_IOU or more (intersection over union) is the
    same object, and the more confident of the two stays. Instances without a box are
    kept as they are, once."""
    result = [dict(i) for i in (kept or []) if isinstance(i, dict)]
    for instance in added or []:
        if not isinstance(instance, dict):
            continue
        same = next((n for n, k in enumerate(result) if _iou(k.get("box"), instance.get("box")) >= SAME_BOX_IOU), None)
        if same is None:
            if instance not in result:
                result.append(dict(instance))
        elif (instance.get("confidence") or 0) > (result[same].get("confidence") or 0):
            result[same] = dict(instance)
    return result


def _iou(a, b) -> float:
    """Intersection over union of two boxes given as ratios (left, top, width, height)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return 0.0
    try:
        ax, ay, aw, ah = (float(a[k]) for k in ("left", "top", "width", "height"))
        bx, by, bw, bh = (float(b[k]) for k in ("left", "top", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return 0.0
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@transaction.atomic
def label_add(*, photo_id: int, name: str, actor, note: str = "") -> Label:
    """Add an approved label to a photo. If the photo already has a label of that name
    (a machine label, pending or rejected), it is approved instead of duplicated."""
    transaction.on_commit(forget_label_choices)  # the admin's filter counts change
    name = clean_name(name)
    now = timezone.now()
    existing = Label.objects.select_for_update().filter(photo_id=photo_id, name=name).first()
    if existing is not None:
        before = _state(existing)
        if existing.review_state != Label.Review.APPROVED:
            existing.review_state = Label.Review.APPROVED
            existing.reviewed_by = actor
            existing.reviewed_at = now
            existing.save(update_fields=["review_state", "reviewed_by", "reviewed_at", "updated_at"])
            AuditEvent.objects.create(photo_id=photo_id, label_name=name, action=AuditEvent.Action.APPROVE,
                                      actor=actor, at=now, before=before, after=_state(existing), note=note)
        return existing
    label = Label.objects.create(photo_id=photo_id, name=name, source=Label.Source.EDITOR,
                                 review_state=Label.Review.APPROVED, reviewed_by=actor, reviewed_at=now)
    AuditEvent.objects.create(photo_id=photo_id, label_name=name, action=AuditEvent.Action.ADD, actor=actor, at=now,
                              before={}, after=_state(label), note=note)
    return label


@transaction.atomic
def labels_add(*, photo_ids: Iterable[int], name: str, actor, note: str = "") -> int:
    """Add the label ``name`` to many photos at once: photos that already have it
    (machine, pending or rejected) get it approved, the others an approved editor label.
    Returns how many photos changed. Constant queries."""
    transaction.on_commit(forget_label_choices)  # the admin's filter counts change
    name = clean_name(name)
    photo_ids = set(photo_ids)
    now = timezone.now()
    existing = {lb.photo_id: lb for lb in Label.objects.select_for_update().filter(photo_id__in=photo_ids, name=name)}
    to_approve = [lb for lb in existing.values() if lb.review_state != Label.Review.APPROVED]
    to_create = [
        Label(photo_id=pid, name=name, source=Label.Source.EDITOR, review_state=Label.Review.APPROVED,
              reviewed_by=actor, reviewed_at=now)
        for pid in photo_ids if pid not in existing
    ]
    if to_approve:
        Label.objects.filter(id__in=[lb.id for lb in to_approve]).update(
            review_state=Label.Review.APPROVED, reviewed_by=actor, reviewed_at=now, updated_at=now
        )
    if to_create:
        Label.objects.bulk_create(to_create)
    AuditEvent.objects.bulk_create(
        [AuditEvent(photo_id=lb.photo_id, label_name=name, action=AuditEvent.Action.APPROVE, actor=actor, at=now,
                    before=_state(lb), after={**_state(lb), "review_state": Label.Review.APPROVED}, note=note)
         for lb in to_approve]
        + [AuditEvent(photo_id=lb.photo_id, label_name=name, action=AuditEvent.Action.ADD, actor=actor, at=now,
                      before={}, after=_state(lb), note=note) for lb in to_create]
    )
    return len(to_approve) + len(to_create)
