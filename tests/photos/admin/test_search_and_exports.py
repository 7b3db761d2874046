"""The photo changelist's label logic search and parent filter, re-analysis, and the
CSV / COCO exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from infra.functions.labeler.record import Box, Instance, Label as RecordLabel, LabelRecord
from photos.admin import parse_label_query
from photos.models import Label, Photo
from photos.roles import roles_ensure
from photos.apply import apply_records

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/photos/photo/"


def analysed(name, labels, size=(1000, 500)):
    stamp = "2026-11-22T08:00:00.000000Z"
    key = f"uploads/{name}"
    Photo.objects.create(image=key, original_filename=name, width=size[0], height=size[1])
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=stamp, updated_at=stamp,
                               labels=tuple(RecordLabel(name=n, confidence=c, parents=tuple(p),
                                                        instances=(Instance(Box(0.1, 0.2, 0.3, 0.4), c),) if box else ())
                                            for n, (c, p, box) in labels.items()))])
    return Photo.objects.get(image=key)


@pytest.fixture
def photos():
    return {
        "dog-park": analysed("dog-park.jpg", {"Dog": (95.0, ["Animal", "Pet"], True), "Grass": (80.0, ["Plant"], False)}),
        "cat-park": analysed("cat-park.jpg", {"Cat": (90.0, ["Animal", "Pet"], True), "Grass": (70.0, ["Plant"], False)}),
        "dog-home": analysed("dog-home.jpg", {"Dog": (85.0, ["Animal", "Pet"], True), "Sofa": (75.0, ["Furniture"], False)}),
        "street": analysed("street.jpg", {"Car": (88.0, ["Vehicle"], True)}),
    }


@pytest.fixture
def staff(client):
    roles_ensure()
    user = get_user_model().objects.create_user("ed", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))
    client.force_login(user)
    return client


def shown(client, query):
    return sorted(p.original_filename for p in client.get(CHANGELIST, {"q": query}).context["cl"].result_list)


@pytest.mark.parametrize(("text", "parsed"), [
    ("Dog AND Grass NOT Cat", (["Dog", "Grass"], ["Cat"])),
    ("+Dog -Cat", (["Dog"], ["Cat"])),
    ('"Golden Retriever" NOT Cat', (["Golden Retriever"], ["Cat"])),
    ('+"Golden Retriever" -Cat', (["Golden Retriever"], ["Cat"])),
    ("holiday photo", None),
])
def test_label_query_parsing(text, parsed):
    assert parse_label_query(text) == parsed


@pytest.mark.parametrize(("query", "expected"), [
    ("Dog AND Grass", ["dog-park.jpg"]),
    ("Dog NOT Grass", ["dog-home.jpg"]),
    ("+Animal -Cat", ["dog-home.jpg", "dog-park.jpg"]),  # parents count: Animal includes Dog
    ("+Pet +Plant", ["cat-park.jpg", "dog-park.jpg"]),
    ("NOT Animal", ["street.jpg"]),
    ("dog", ["dog-home.jpg", "dog-park.jpg"]),  # no operator: the ordinary search
])
def test_and_not_label_search(staff, photos, query, expected):
    assert shown(staff, query) == expected


def test_rejected_labels_do_not_match(staff, photos):
    Label.objects.filter(photo=photos["dog-home"], name="Dog").update(review_state="rejected")

    assert shown(staff, "+Dog") == ["dog-park.jpg"]


def test_parent_filter_includes_children(staff, photos):
    names = sorted(p.original_filename for p in staff.get(CHANGELIST, {"parent": "Animal"}).context["cl"].result_list)

    assert names == ["cat-park.jpg", "dog-home.jpg", "dog-park.jpg"]


def test_reanalyse_requeues_the_selected_photos(staff, photos, fake_queue):
    ids = [photos["dog-park"].pk, photos["street"].pk]

    response = staff.post(CHANGELIST, {"action": "reanalyse", "_selected_action": ids}, follow=True)

    assert "Sent 2 photo(s) for analysis" in response.content.decode()
    assert sorted(args[0] for name, args in fake_queue.sent if name == "photos.tasks.analyze_photo") == sorted(ids)
    assert set(Photo.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}


def test_moderators_cannot_reanalyse(client, photos, fake_queue):
    roles_ensure()
    user = get_user_model().objects.create_user("mod", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    client.force_login(user)

    client.post(CHANGELIST, {"action": "reanalyse", "_selected_action": [photos["street"].pk]})

    assert fake_queue.sent == []


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_csv_export_of_approved_labels(staff, photos):
    Label.objects.filter(name__in=["Dog", "Sofa"]).update(review_state="approved")
    Label.objects.filter(name="Dog", photo=photos["dog-home"]).update(name="=cmd|' /C calc'!A0")

    response = staff.post(CHANGELIST, {"action": "export_csv_approved", "_selected_action": [p.pk for p in photos.values()]})

    assert response["Content-Disposition"] == 'attachment; filename="labels-approved.csv"'
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert sorted(r["label"] for r in rows) == ["'=cmd|' /C calc'!A0", "Dog", "Sofa"]  # formula neutralised
    dog = next(r for r in rows if r["label"] == "Dog")
    assert (dog["review_state"], dog["parents"], json.loads(dog["boxes"])) == (
        "approved", "Animal|Pet", [{"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}])


def test_csv_export_of_all_labels_has_their_states(staff, photos):
    Label.objects.filter(name="Cat").update(review_state="rejected")

    rows = list(csv.DictReader(io.StringIO(_body(staff.post(CHANGELIST, {
        "action": "export_csv_all", "_selected_action": [photos["cat-park"].pk]})))))

    assert {(r["label"], r["review_state"]) for r in rows} == {("Cat", "rejected"), ("Grass", "pending")}


def test_coco_export_is_valid_coco_with_pixel_boxes(staff, photos, monkeypatch):
    from photos import exports

    monkeypatch.setattr(exports, "CHUNK", 2)  # several chunks, streamed
    response = staff.post(CHANGELIST, {"action": "export_coco_all", "_selected_action": [p.pk for p in photos.values()]})

    coco = json.loads(_body(response))
    assert {i["file_name"] for i in coco["images"]} == {p.image.name for p in photos.values()}
    categories = {c["name"]: c for c in coco["categories"]}
    assert categories["Dog"]["supercategory"] == "Animal"
    dogs = [a for a in coco["annotations"] if a["category_id"] == categories["Dog"]["id"]]
    assert len(dogs) == 2
    assert dogs[0]["bbox"] == [100.0, 100.0, 300.0, 200.0]  # 1000 x 500 image
    assert dogs[0]["score"] == 0.95 or dogs[0]["score"] == 0.85
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    grass_image = next(i for i in coco["images"] if i["file_name"].endswith("dog-park.jpg"))
    assert [lb["name"] for lb in grass_image["labels"]] == ["Grass"]  # labels without boxes


def test_site_users_cannot_export(client, photos):
    client.force_login(get_user_model().objects.create_user("site", password="x"))

    response = client.post(CHANGELIST, {"action": "export_csv_all", "_selected_action": [photos["street"].pk]})

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_add_a_label_to_many_photos_at_once(staff, photos):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from photos.models import AuditEvent

    Label.objects.filter(photo=photos["cat-park"], name="Grass").update(review_state="rejected")
    ids = [photos["dog-park"].pk, photos["cat-park"].pk, photos["street"].pk]

    form = staff.post(CHANGELIST, {"action": "add_label", "_selected_action": ids})
    assert "Label to add" in form.content.decode()
    with CaptureQueriesContext(connection) as ctx:
        done = staff.post(CHANGELIST, {"action": "add_label", "_selected_action": ids, "name": "Grass"}, follow=True)

    # dog-park's pending and cat-park's rejected Grass are approved; street gets an editor label.
    assert "Label Grass approved on 3 photo(s)." in done.content.decode()
    got = {p: (lb.source, lb.review_state) for p in ids for lb in [Label.objects.get(photo_id=p, name="Grass")]}
    assert got == {photos["dog-park"].pk: ("machine", "approved"), photos["cat-park"].pk: ("machine", "approved"),
                   photos["street"].pk: ("editor", "approved")}
    assert sorted(AuditEvent.objects.filter(label_name="Grass").values_list("action", flat=True)) == ["add", "approve", "approve"]
    assert len(ctx) < 25


def test_staff_flag_photos_for_moderation(staff, photos):
    from photos.models import Flag

    ids = [photos["street"].pk, photos["dog-home"].pk]

    done = staff.post(CHANGELIST, {"action": "flag_for_moderation", "_selected_action": ids, "reason": "privacy",
                                   "note": "licence plate"}, follow=True)

    assert "Flagged 2 photo(s) for moderation." in done.content.decode()
    assert set(Photo.objects.filter(pk__in=ids).values_list("moderation_state", flat=True)) == {"flagged"}
    assert Flag.objects.filter(reason="privacy", note="licence plate").count() == 2
