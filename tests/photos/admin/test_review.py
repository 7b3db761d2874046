"""The review queue and the one-photo review page in the admin: who may see and do what,
the queue's order and filters, bulk actions, and the audit trail they leave."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from infra.functions.labeler.record import Box, Instance, Label as RecordLabel, LabelRecord, TextDetection
from photos.models import AuditEvent, Label, Photo
from photos.roles import roles_ensure
from photos.apply import apply_records

pytestmark = pytest.mark.django_db

QUEUE = "/admin/photos/reviewitem/"


def analysed(key, labels, parents=None, text=()):
    stamp = "2026-11-22T08:00:00.000000Z"
    apply_records([LabelRecord(
        bucket="b", key=key, status="LABELED", engine="local",
        labels=tuple(RecordLabel(name=n, confidence=c, parents=tuple((parents or {}).get(n, ())),
                                 instances=(Instance(Box(0.1, 0.2, 0.3, 0.4), c),)) for n, c in labels.items()),
        text=tuple(text), analyzed_at=stamp, updated_at=stamp)])
    return Photo.objects.get(image=key)


def user_in(group: str | None, **extra):
    roles_ensure()
    user = get_user_model().objects.create_user(group or "site", password="x", is_staff=group is not None, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def editor_client(client):
    client.force_login(user_in("Editors"))
    return client


# --- permission matrix -----------------------------------------------------------------

VIEWS = ["queue", "review", "review_post", "audit", "queue_action"]


def request(client, view, photo, label):
    if view == "queue":
        return client.get(QUEUE)
    if view == "review":
        return client.get(f"/admin/photos/photo/{photo.pk}/review/")
    if view == "review_post":
        return client.post(f"/admin/photos/photo/{photo.pk}/review/", {"action": "approve", "label": label.pk})
    if view == "audit":
        return client.get("/admin/photos/auditevent/")
    if view == "queue_action":
        return client.post(QUEUE, {"action": "approve", "_selected_action": [label.pk]})
    raise AssertionError(view)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, {"queue": 302, "review": 302, "review_post": 302, "audit": 302, "queue_action": 302}),
        ("plain-staff", {"queue": 403, "review": 403, "review_post": 403, "audit": 403, "queue_action": 403}),
        ("Moderators", {"queue": 403, "review": 200, "review_post": 403, "audit": 200, "queue_action": 403}),
        ("Editors", {"queue": 200, "review": 200, "review_post": 302, "audit": 200, "queue_action": 302}),
        ("superuser", {"queue": 200, "review": 200, "review_post": 302, "audit": 200, "queue_action": 302}),
    ],
)
def test_permission_matrix(client, role, expected):
    photo = analysed("uploads/a.jpg", {"Dog": 60.0})
    label = Label.objects.get()
    if role == "superuser":
        client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    elif role == "plain-staff":
        client.force_login(get_user_model().objects.create_user("staff", password="x", is_staff=True))
    elif role is not None:
        client.force_login(user_in(role))
    else:
        client.force_login(user_in(None))  # a site user: not staff

    got = {view: request(client, view, photo, label).status_code for view in VIEWS}

    assert got == expected
    approved = Label.objects.get().review_state == "approved"
    assert approved is (role in ("Editors", "superuser"))


# --- the queue ---------------------------------------------------------------------------


def test_queue_lists_pending_machine_labels_least_confident_first(editor_client):
    photo = analysed("uploads/a.jpg", {"Dog": 90.0, "Cat": 40.0, "Grass": 65.0})
    Label.objects.filter(name="Grass").update(review_state="approved")
    Label.objects.create(photo=photo, name="Park", source="editor", review_state="pending")

    names = [lb.name for lb in editor_client.get(QUEUE).context["cl"].result_list]

    assert names == ["Cat", "Dog"]


@pytest.mark.parametrize(("query", "expected"), [
    ("?parent=Animal", ["Cat", "Dog"]),
    ("?band=lt50", ["Cat"]),
    ("?band=gte90", ["Dog"]),
    ("?label=Grass", ["Grass"]),
    ("?engine=local", ["Cat", "Grass", "Dog"]),
])
def test_queue_filters(editor_client, query, expected):
    analysed("uploads/a.jpg", {"Dog": 90.0, "Cat": 40.0, "Grass": 65.0}, parents={"Dog": ["Animal", "Pet"], "Cat": ["Animal"]})

    names = [lb.name for lb in editor_client.get(QUEUE + query).context["cl"].result_list]

    assert names == expected


def test_bulk_approve_from_the_queue_costs_constant_queries(editor_client):
    for i in range(5):
        analysed(f"uploads/s{i}.jpg", {"Dog": 90.0})
    few_ids = list(Label.objects.values_list("id", flat=True))
    for i in range(100):
        analysed(f"uploads/l{i}.jpg", {"Dog": 90.0, "Cat": 40.0})
    many_ids = list(Label.objects.exclude(id__in=few_ids).values_list("id", flat=True))
    editor_client.get(QUEUE)  # steady state: the filter sidebar's choices are cached

    with CaptureQueriesContext(connection) as few:
        editor_client.post(QUEUE, {"action": "approve", "_selected_action": few_ids})
    with CaptureQueriesContext(connection) as many:
        editor_client.post(QUEUE, {"action": "approve", "_selected_action": many_ids})

    assert len(few) == len(many)
    assert Label.objects.filter(review_state="approved").count() == 205
    assert AuditEvent.objects.filter(action="approve").count() == 205


def test_merge_action_asks_for_the_name_then_merges(editor_client):
    analysed("uploads/a.jpg", {"Puppy": 70.0})
    analysed("uploads/b.jpg", {"Hound": 60.0})
    ids = list(Label.objects.values_list("id", flat=True))

    form = editor_client.post(QUEUE, {"action": "merge", "_selected_action": ids})
    assert form.status_code == 200 and "Merge into" in form.content.decode()

    done = editor_client.post(QUEUE, {"action": "merge", "_selected_action": ids, "into": "Dog", "note": "same thing"}, follow=True)

    assert "Merged 2 label(s) into Dog." in done.content.decode()
    assert set(Label.objects.filter(review_state="approved").values_list("name", flat=True)) == {"Dog"}
    assert AuditEvent.objects.filter(action="merge", note="same thing").count() == 2


# --- the one-photo review page -----------------------------------------------------------


def test_review_page_draws_every_box_with_its_label_and_confidence(editor_client):
    photo = analysed("uploads/a.jpg", {"Face": 87.0}, text=[TextDetection(text="STOP", type="LINE", confidence=99.0, box=Box(0.5, 0.6, 0.2, 0.1))])

    page = editor_client.get(f"/admin/photos/photo/{photo.pk}/review/").content.decode()

    assert 'class="kind-label" x="0.100000" y="0.200000" width="0.300000" height="0.400000"' in page
    assert 'class="kind-text" x="0.500000" y="0.600000"' in page
    assert "Face 87%" in page and "Text: STOP 99%" in page
    assert 'data-toggle="Face"' in page


def test_review_page_actions_change_labels_and_show_in_history(editor_client):
    photo = analysed("uploads/a.jpg", {"Canine": 80.0, "Blur": 30.0})
    url = f"/admin/photos/photo/{photo.pk}/review/"
    canine, blur = Label.objects.get(name="Canine"), Label.objects.get(name="Blur")

    editor_client.post(url, {"action": "reject", "label": blur.pk})
    editor_client.post(url, {"action": "rename", "label": canine.pk, "name": "Dog"})
    editor_client.post(url, {"action": "add", "name": "Park"})
    page = editor_client.get(url).content.decode()

    assert {lb.name: lb.review_state for lb in photo.labels.all()} == {
        "Canine": "rejected", "Blur": "rejected", "Dog": "approved", "Park": "approved"}
    assert "Renamed label Canine → Dog" in page and "Added label Park" in page and "Rejected label Blur" in page
    change_page = editor_client.get(f"/admin/photos/photo/{photo.pk}/change/").content.decode()
    assert "Added label Park" in change_page


def test_review_page_refuses_a_bad_name_with_a_message(editor_client):
    photo = analysed("uploads/a.jpg", {"Dog": 80.0})

    page = editor_client.post(f"/admin/photos/photo/{photo.pk}/review/", {"action": "add", "name": "  "}, follow=True)

    assert "A label needs a name." in page.content.decode()
    assert AuditEvent.objects.count() == 0


def test_next_and_previous_walk_photos_with_pending_labels(editor_client):
    first = analysed("uploads/1.jpg", {"Dog": 80.0})
    done = analysed("uploads/2.jpg", {"Cat": 80.0})
    Label.objects.filter(photo=done).update(review_state="approved")
    third = analysed("uploads/3.jpg", {"Cow": 80.0})

    context = editor_client.get(f"/admin/photos/photo/{first.pk}/review/").context

    assert (context["previous_photo"], context["next_photo"]) == (None, third.pk)
    assert editor_client.get(f"/admin/photos/photo/{third.pk}/review/").context["previous_photo"] == first.pk


def test_label_history_page_lists_every_change_of_one_name(editor_client):
    analysed("uploads/1.jpg", {"Dog": 80.0})
    analysed("uploads/2.jpg", {"Dog": 70.0, "Cat": 50.0})
    editor_client.post(QUEUE, {"action": "approve", "_selected_action": list(Label.objects.values_list("id", flat=True))})

    events = editor_client.get("/admin/photos/auditevent/?label=Dog").context["cl"].result_list

    assert sorted(e.label_name for e in events) == ["Dog", "Dog"]


def test_filter_counts_are_fresh_after_a_merge(editor_client, django_capture_on_commit_callbacks):
    """The label filter's counts were cached for five minutes: after merging Cow into
    Horse the sidebar still offered "Cow (2)" (issue 19, finding 4)."""
    from photos.services import review

    for n in range(2):
        analysed(f"uploads/herd{n}.jpg", {"Cow": 60.0, "Horse": 50.0})
    before = editor_client.get("/admin/photos/reviewitem/").content.decode()
    assert "Cow (2)" in before

    with django_capture_on_commit_callbacks(execute=True):
        review.labels_merge(label_ids=list(Label.objects.filter(name="Cow").values_list("id", flat=True)), into="Horse",
                            actor=get_user_model().objects.get(username="Editors"))

    after = editor_client.get("/admin/photos/reviewitem/").content.decode()
    assert "Cow (2)" not in after


def test_the_queue_has_one_item_per_specific_label_and_approving_it_approves_its_parents(editor_client):
    """74 items for 16 photos: every parent label was an item of its own (issue 19,
    finding 4)."""
    from photos.services import review

    dog = analysed("uploads/dog.jpg", {"Dog": 80.0, "Animal": 80.0, "Mammal": 80.0},
                   parents={"Dog": ("Animal", "Mammal"), "Mammal": ("Animal",)})
    only_parent = analysed("uploads/blur.jpg", {"Animal": 60.0})

    listed = editor_client.get("/admin/photos/reviewitem/").content.decode()
    assert listed.count('class="field-name"') == 2  # Dog, and the Animal no kind of which was found

    review.labels_decide(label_ids=[Label.objects.get(photo=dog, name="Dog").id], decision="approved",
                         actor=get_user_model().objects.get(username="Editors"))

    assert {lb.name: lb.review_state for lb in Label.objects.filter(photo=dog)} == {
        "Dog": "approved", "Animal": "approved", "Mammal": "approved"}
    assert Label.objects.get(photo=only_parent).review_state == "pending"
    assert AuditEvent.objects.filter(label_name="Animal", note="(with its kind)").count() == 1
