"""Editors' decisions: approve, reject, rename, merge, add; in bulk at a constant
number of queries; each with its audit entry; and all of them surviving re-analysis."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from infra.functions.labeler.record import Label as RecordLabel, LabelRecord
from photos.services import review
from photos.models import AuditEvent, Label, Photo
from photos.apply import apply_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(db):
    return get_user_model().objects.create_user("ed", password="x", is_staff=True)


def analysed(key: str, labels: dict[str, float], minutes: int = 0) -> Photo:
    stamp = f"2026-11-22T08:{minutes:02d}:00.000000Z"
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local",
                               labels=tuple(RecordLabel(name=n, confidence=c) for n, c in labels.items()),
                               analyzed_at=stamp, updated_at=stamp)])
    return Photo.objects.get(image=key)


def state(photo):
    return {lb.name: (lb.source, lb.review_state) for lb in Label.objects.filter(photo=photo)}


def test_approve_and_reject_record_who_when_before_and_after(editor):
    photo = analysed("uploads/a.jpg", {"Dog": 90.0, "Cat": 40.0})
    dog, cat = Label.objects.get(name="Dog"), Label.objects.get(name="Cat")

    assert review.labels_decide(label_ids=[dog.id], decision="approved", actor=editor) == 1
    assert review.labels_decide(label_ids=[cat.id], decision="rejected", actor=editor, note="it is a dog") == 1

    assert state(photo) == {"Dog": ("machine", "approved"), "Cat": ("machine", "rejected")}
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.label_name, e.actor, e.before["review_state"], e.after["review_state"]) for e in events] == [
        ("approve", "Dog", editor, "pending", "approved"), ("reject", "Cat", editor, "pending", "rejected")]
    assert events[1].note == "it is a dog"
    assert Label.objects.get(name="Dog").reviewed_by == editor


def test_deciding_again_changes_nothing_and_logs_nothing(editor):
    analysed("uploads/a.jpg", {"Dog": 90.0})
    dog = Label.objects.get()
    review.labels_decide(label_ids=[dog.id], decision="approved", actor=editor)

    assert review.labels_decide(label_ids=[dog.id], decision="approved", actor=editor) == 0
    assert AuditEvent.objects.count() == 1


def test_bulk_decisions_cost_the_same_queries_for_3_or_300_labels(editor):
    small = [analysed(f"uploads/s{i}.jpg", {"Dog": 90.0}) for i in range(3)]
    large = [analysed(f"uploads/l{i}.jpg", {"Dog": 90.0, "Cat": 50.0, "Grass": 70.0}) for i in range(100)]
    few_ids = list(Label.objects.filter(photo__in=small).values_list("id", flat=True))
    many_ids = list(Label.objects.filter(photo__in=large).values_list("id", flat=True))

    with CaptureQueriesContext(connection) as few:
        review.labels_decide(label_ids=few_ids, decision="approved", actor=editor)
    with CaptureQueriesContext(connection) as many:
        review.labels_decide(label_ids=many_ids, decision="approved", actor=editor)

    assert len(few) == len(many) <= 6
    assert Label.objects.filter(review_state="approved").count() == 303
    assert AuditEvent.objects.count() == 303


def test_rename_rejects_the_machine_label_and_approves_the_new_name(editor):
    photo = analysed("uploads/a.jpg", {"Canine": 88.0})
    canine = Label.objects.get()

    assert review.labels_merge(label_ids=[canine.id], into="Dog", actor=editor) == 1

    assert state(photo) == {"Canine": ("machine", "rejected"), "Dog": ("editor", "approved")}
    assert Label.objects.get(name="Dog").confidence == 88.0
    event = AuditEvent.objects.get()
    assert (event.action, event.label_name, event.after["merged_into"]) == ("rename", "Canine", "Dog")


def test_merge_into_an_existing_label_approves_it(editor):
    photo = analysed("uploads/a.jpg", {"Puppy": 70.0, "Hound": 60.0, "Dog": 55.0})
    ids = list(Label.objects.filter(name__in=["Puppy", "Hound"]).values_list("id", flat=True))

    assert review.labels_merge(label_ids=ids, into="Dog", actor=editor) == 2

    assert state(photo) == {"Puppy": ("machine", "rejected"), "Hound": ("machine", "rejected"), "Dog": ("machine", "approved")}
    assert AuditEvent.objects.filter(action="merge").count() == 2


def test_bulk_merge_across_photos_costs_constant_queries(editor):
    small = [analysed(f"uploads/s{i}.jpg", {"Puppy": 70.0}) for i in range(2)]
    large = [analysed(f"uploads/l{i}.jpg", {"Puppy": 70.0, "Dog": 60.0 if i % 2 else 0.0}) for i in range(60)]
    few_ids = list(Label.objects.filter(photo__in=small, name="Puppy").values_list("id", flat=True))
    many_ids = list(Label.objects.filter(photo__in=large, name="Puppy").values_list("id", flat=True))

    with CaptureQueriesContext(connection) as few:
        review.labels_merge(label_ids=few_ids, into="Dog", actor=editor)
    with CaptureQueriesContext(connection) as many:
        review.labels_merge(label_ids=many_ids, into="Dog", actor=editor)

    assert len(few) == len(many) <= 9
    assert Label.objects.filter(name="Dog", review_state="approved").count() == 62


def test_add_creates_an_editor_label_or_approves_the_existing_one(editor):
    photo = analysed("uploads/a.jpg", {"Cat": 40.0})
    Label.objects.filter(name="Cat").update(review_state="rejected")

    review.label_add(photo_id=photo.id, name="  Golden   Retriever ", actor=editor)
    review.label_add(photo_id=photo.id, name="Cat", actor=editor)

    assert state(photo) == {"Cat": ("machine", "approved"), "Golden Retriever": ("editor", "approved")}
    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["add", "approve"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_bad_names_are_refused(editor, name):
    photo = analysed("uploads/a.jpg", {"Cat": 40.0})

    with pytest.raises(review.ReviewError):
        review.label_add(photo_id=photo.id, name=name, actor=editor)


def test_decisions_survive_reanalysis(editor):
    photo = analysed("uploads/a.jpg", {"Canine": 88.0, "Grass": 60.0, "Blur": 30.0})
    review.labels_merge(label_ids=[Label.objects.get(name="Canine").id], into="Dog", actor=editor)
    review.labels_decide(label_ids=[Label.objects.get(name="Grass").id], decision="approved", actor=editor)
    review.labels_decide(label_ids=[Label.objects.get(name="Blur").id], decision="rejected", actor=editor)
    review.label_add(photo_id=photo.id, name="Park", actor=editor)

    analysed("uploads/a.jpg", {"Canine": 91.0, "Blur": 35.0, "Tree": 70.0}, minutes=30)

    assert state(photo) == {
        "Canine": ("machine", "rejected"), "Dog": ("editor", "approved"), "Grass": ("machine", "approved"),
        "Blur": ("machine", "rejected"), "Park": ("editor", "approved"), "Tree": ("machine", "pending"),
    }
    assert Label.objects.get(name="Grass").missing_from_latest is True


def boxed(key: str, labels: dict[str, list[tuple[float, float]]]) -> Photo:
    """A photo whose labels have boxes: {name: [(left, top), ...]}, each 0.2 x 0.2, 90 %."""
    from infra.functions.labeler.record import Box, Instance

    stamp = "2026-11-22T08:00:00.000000Z"
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=stamp, updated_at=stamp,
                               labels=tuple(RecordLabel(name=n, confidence=90.0, instances=tuple(
                                   Instance(box=Box(left=x, top=y, width=0.2, height=0.2), confidence=90.0)
                                   for x, y in spots)) for n, spots in labels.items()))])
    return Photo.objects.get(image=key)


def test_a_merge_keeps_every_box_of_both_labels_once(editor):
    """Merging Cow (2 boxes) into the photo's Horse (2 boxes) left Horse with 2: Cow's
    boxes were gone from the page and from the CSV and COCO exports."""
    from photos.exports import labels_coco, labels_csv

    photo = boxed("uploads/herd.jpg", {"Horse": [(0.0, 0.0), (0.3, 0.0)], "Cow": [(0.0, 0.6), (0.305, 0.0)]})
    cow = Label.objects.get(photo=photo, name="Cow")

    review.labels_merge(label_ids=[cow.id], into="Horse", actor=editor)

    horse = Label.objects.get(photo=photo, name="Horse")
    spots = sorted((i["box"]["left"], i["box"]["top"]) for i in horse.instances)
    assert spots == [(0.0, 0.0), (0.0, 0.6), (0.3, 0.0)]  # the cow at (0.305, 0) is the horse at (0.3, 0): once
    assert (horse.review_state, horse.source) == ("approved", "editor")
    csv = "".join(labels_csv(Photo.objects.filter(pk=photo.pk), approved_only=True))
    assert csv.count('""left""') == 3, csv  # one row per label, its boxes listed
    coco = "".join(labels_coco(Photo.objects.filter(pk=photo.pk), approved_only=True))
    assert coco.count('"bbox"') == 3, coco
    # A later analysis does not take the merged boxes away.
    boxed("uploads/herd.jpg", {"Horse": [(0.0, 0.0), (0.3, 0.0)], "Cow": [(0.0, 0.6), (0.305, 0.0)]})
    assert len(Label.objects.get(photo=photo, name="Horse").instances) == 3


def test_merging_a_boxed_label_into_an_unboxed_one_gives_it_the_boxes(editor):
    """Motorcycle (a box) into the photo's Vehicle (no box): Vehicle had no box after."""
    photo = boxed("uploads/road.jpg", {"Motorcycle": [(0.4, 0.4)], "Vehicle": []})

    review.labels_merge(label_ids=[Label.objects.get(photo=photo, name="Motorcycle").id], into="Vehicle", actor=editor)

    assert [i["box"]["left"] for i in Label.objects.get(photo=photo, name="Vehicle").instances] == [0.4]


def test_two_editors_renaming_one_label_leave_one_name(editor):
    """Both pages showed Dog; the first renamed it Hound, the second Canine: the photo
    kept both names, approved (issue 19, finding 3)."""
    other = get_user_model().objects.create_user("ed2", password="x", is_staff=True)
    photo = analysed("uploads/a.jpg", {"Dog": 90.0})
    dog = Label.objects.get(photo=photo, name="Dog")

    review.labels_merge(label_ids=[dog.id], into="Hound", actor=editor)
    with pytest.raises(review.ReviewError, match="Dog was already renamed, merged or rejected"):
        review.labels_merge(label_ids=[dog.id], into="Canine", actor=other)

    assert state(photo) == {"Dog": ("machine", "rejected"), "Hound": ("editor", "approved")}
