"""Who may do what, as one table: every role x every admin screen, action and custom view,
and the site's views. Anything the table does not allow is refused and changes nothing;
what it allows that changes state leaves an audit entry.

The table must name every registered model admin and every field it lets anyone edit:
adding an admin, a field or an action without a decision here fails these tests.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import serializers
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import RequestFactory
from django.utils import timezone

from photos.models import AnalysisRecord, AuditEvent, Flag, Label, ModerationLabel, ModerationSettings, PendingErasure, Photo
from photos.roles import roles_ensure
from tests.records import analysed_photo
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "site", "editor", "moderator", "superuser")
STAFF = {"editor", "moderator", "superuser"}
EXPORTS = {"export_csv_approved", "export_csv_all", "export_coco_approved", "export_coco_all"}

# model -> what each role may do in its admin. "editable": the fields of its change form
# anyone may change (superusers; the others' forms are narrower or absent); "actions":
# the actions each role is offered.
DECISIONS: dict[str, dict] = {
    "auth.Group": {"view": {"superuser"}, "add": {"superuser"}, "change": {"superuser"}, "delete": {"superuser"},
                   "editable": {"name", "permissions"}, "actions": {"superuser": {"delete_selected"}}},
    "auth.User": {"view": {"superuser"}, "add": {"superuser"}, "change": {"superuser"}, "delete": {"superuser"},
                  "editable": {"username", "password", "first_name", "last_name", "email", "is_active", "is_staff",
                               "is_superuser", "groups", "user_permissions", "last_login", "date_joined"},
                  "actions": {"superuser": {"delete_selected"}}},
    "photos.Photo": {"view": STAFF, "add": set(), "change": {"superuser"}, "delete": {"superuser"}, "editable": set(),
                     "actions": {"editor": {"add_label", "flag_for_moderation", "reanalyse", *EXPORTS},
                                 "moderator": {"flag_for_moderation", *EXPORTS},
                                 "superuser": {"add_label", "flag_for_moderation", "reanalyse", "delete_selected", *EXPORTS}}},
    "photos.Label": {"view": STAFF, "add": set(), "change": set(), "delete": set(), "editable": set(), "actions": {}},
    "photos.ReviewItem": {"view": {"editor", "superuser"}, "add": set(), "change": set(), "delete": set(), "editable": set(),
                          "actions": {"editor": {"approve", "reject", "merge"}, "superuser": {"approve", "reject", "merge"}}},
    "photos.ModerationCase": {"view": {"moderator", "superuser"}, "add": set(), "change": set(), "delete": set(),
                              "editable": set(), "actions": {}},
    "photos.Flag": {"view": {"moderator", "superuser"}, "add": set(), "change": set(), "delete": set(), "editable": set(),
                    "actions": {}},
    "photos.AnalysisRecord": {"view": {"moderator", "superuser"}, "add": set(), "change": set(), "delete": set(),
                              "editable": set(), "actions": {}},
    # The erasure outbox: what storage still holds of erased photos; operators only.
    "photos.PendingErasure": {"view": {"superuser"}, "add": set(), "change": set(), "delete": set(),
                              "editable": set(), "actions": {}},
    "photos.AuditEvent": {"view": STAFF, "add": set(), "change": set(), "delete": set(), "editable": set(), "actions": {}},
    # django-axes: superusers see lockouts and lift them (delete an attempt, or the action).
    "axes.AccessAttempt": {"view": {"superuser"}, "add": set(), "change": {"superuser"}, "delete": {"superuser"},
                           "editable": set(), "actions": {"superuser": {"cleanup_expired_attempts", "delete_selected"}}},
    "axes.AccessLog": {"view": {"superuser"}, "add": set(), "change": {"superuser"}, "delete": {"superuser"},
                       "editable": set(), "actions": {"superuser": {"delete_selected"}}},
    "axes.AccessFailureLog": {"view": {"superuser"}, "add": set(), "change": {"superuser"}, "delete": {"superuser"},
                              "editable": set(), "actions": {"superuser": {"delete_selected"}}},
    "photos.ModerationSettings": {"view": {"superuser"}, "add": {"superuser"}, "change": {"superuser"}, "delete": set(),
                                  "editable": {"display_threshold", "flag_threshold", "category_thresholds"},
                                  "actions": {}},
}


@pytest.fixture
def world():
    roles_ensure()
    User = get_user_model()
    users = {
        "site": User.objects.create_user("site", password="x"),
        "editor": User.objects.create_user("editor", password="x", is_staff=True),
        "moderator": User.objects.create_user("moderator", password="x", is_staff=True),
        "superuser": User.objects.create_superuser("root", password="x"),
    }
    users["editor"].groups.add(Group.objects.get(name="Editors"))
    users["moderator"].groups.add(Group.objects.get(name="Moderators"))
    owner = User.objects.create_user("owner", password="x")
    photo = analysed_photo("p.jpg", {"Dog": (90.0, ["Animal"])}, visibility="private", owner=owner)
    default_storage.save(photo.image.name, ContentFile(photo_bytes("rocket")))
    flagged = analysed_photo("f.jpg", {"Cat": (90.0, [])}, owner=owner, moderation_state=Photo.Moderation.FLAGGED)
    ModerationLabel.objects.create(photo=flagged, name="Explicit", confidence=95.0, level=1)
    flag = Flag.objects.create(photo=flagged, reporter=users["site"], reason=Flag.Reason.NUDITY)
    event = AuditEvent.objects.create(action=AuditEvent.Action.FLAG, actor=users["site"], photo=flagged)
    thresholds = ModerationSettings.objects.create()
    label = photo.labels.get()
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    seen = {"user_agent": "x", "ip_address": "10.0.0.1", "username": "owner", "http_accept": "*/*", "path_info": "/accounts/login/"}
    objects = {
        "axes.AccessAttempt": AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=1),
        "axes.AccessLog": AccessLog.objects.create(**seen),
        "axes.AccessFailureLog": AccessFailureLog.objects.create(**seen, locked_out=False),
        "auth.Group": Group.objects.get(name="Editors"), "auth.User": owner, "photos.Photo": photo,
        "photos.Label": label, "photos.ReviewItem": label, "photos.ModerationCase": flagged, "photos.Flag": flag,
        "photos.AnalysisRecord": AnalysisRecord.objects.filter(photo=photo).first(), "photos.AuditEvent": event,
        "photos.ModerationSettings": thresholds,
        "photos.PendingErasure": PendingErasure.objects.create(key="uploads/gone.jpg", names=["uploads/gone.jpg"]),
    }
    return {"users": users, "objects": objects, "photo": photo, "flagged": flagged, "label": label}


def login(client, world, role):
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def snapshot() -> str:
    """Every row of the photos app and of the users and groups, as one digest."""
    from django.apps import apps

    rows = []
    for model in [*apps.get_app_config("photos").get_models(), *apps.get_app_config("axes").get_models(), get_user_model(), Group]:
        if model._meta.proxy:
            continue
        data = serializers.serialize("json", model.objects.order_by("pk"))
        rows.append(data if model is not AuditEvent else str(model.objects.count()))
    return hashlib.sha256("".join(rows).encode()).hexdigest()


def refused(response, role) -> bool:
    if role in ("anonymous", "site"):
        return response.status_code == 302 and "/admin/login/" in response["Location"]
    return response.status_code == 403


def allowed(response) -> bool:
    return response.status_code == 200 or (response.status_code == 302 and "/admin/login/" not in response["Location"])


def admin_url(label: str, view: str, obj=None) -> str:
    app, model = label.lower().split(".")
    base = f"/admin/{app}/{model}/"
    return {"changelist": base, "add": f"{base}add/", "change": f"{base}{obj.pk}/change/",
            "delete": f"{base}{obj.pk}/delete/", "history": f"{base}{obj.pk}/history/"}[view]


def test_every_model_admin_has_a_decision():
    assert {m._meta.label for m in admin.site._registry} == set(DECISIONS)


def test_every_editable_field_has_a_decision(world):
    request = RequestFactory().get("/")
    request.user = world["users"]["superuser"]
    for model, model_admin in admin.site._registry.items():
        obj = world["objects"][model._meta.label]
        editable = set()
        if model_admin.has_change_permission(request, obj):
            form = model_admin.get_form(request, obj, change=True)
            editable = set(form.base_fields) - set(model_admin.get_readonly_fields(request, obj))
        for inline in model_admin.get_inline_instances(request, obj):
            if inline.has_change_permission(request, obj) or inline.has_add_permission(request, obj) or inline.has_delete_permission(request, obj):
                editable |= {f"{inline.model._meta.model_name}.{f}" for f in inline.get_formset(request, obj).form.base_fields}
        assert editable == DECISIONS[model._meta.label]["editable"], model._meta.label


@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_by_role(client, world, role):
    login(client, world, role)
    for label, decision in DECISIONS.items():
        obj = world["objects"][label]
        for view, needs in (("changelist", "view"), ("change", "view"), ("history", "view"), ("add", "add"),
                            ("delete", "delete")):
            response = client.get(admin_url(label, view, obj))
            if role in decision[needs]:
                assert allowed(response), (label, view, response.status_code)
            else:
                assert refused(response, role), (label, view, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_refused_posts_change_nothing(client, world, role):
    login(client, world, role)
    for label, decision in DECISIONS.items():
        obj = world["objects"][label]
        for view in ("add", "change", "delete"):
            if role in decision[view]:
                continue
            before = snapshot()
            response = client.post(admin_url(label, view, obj), {"post": "yes", "name": "x", "review_state": "approved",
                                                                   "visibility": "public", "moderation_state": "cleared"})
            assert not (response.status_code == 302 and "/admin/login/" not in response["Location"] and view != "change"), (label, view)
            assert snapshot() == before, (label, view, role)


@pytest.mark.parametrize("role", sorted(STAFF))
def test_actions_offered_by_role(world, role):
    request = RequestFactory().get("/")
    request.user = world["users"][role]
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        if not model_admin.has_view_permission(request):
            continue
        offered = set(model_admin.get_actions(request)) if model_admin.actions is not None else set()
        assert offered == DECISIONS[label]["actions"].get(role, set()), (label, role)


@pytest.mark.parametrize(("action", "role", "event"), [
    ("add_label", "editor", AuditEvent.Action.ADD),
    ("flag_for_moderation", "moderator", AuditEvent.Action.FLAG),
    ("delete_selected", "superuser", AuditEvent.Action.DELETE),
])
def test_state_changing_photo_actions_leave_an_audit_entry(client, world, action, role, event):
    login(client, world, role)
    photo = world["photo"]
    data = {"action": action, "_selected_action": [photo.pk], "post": "yes", "name": "Wolf", "reason": "other"}

    client.post("/admin/photos/photo/", data)

    assert AuditEvent.objects.filter(action=event).exclude(pk=world["objects"]["photos.AuditEvent"].pk).exists()


@pytest.mark.parametrize(("action", "event"), [("approve", AuditEvent.Action.APPROVE), ("reject", AuditEvent.Action.REJECT),
                                               ("merge", AuditEvent.Action.MERGE)])
def test_review_queue_actions_leave_an_audit_entry(client, world, action, event):
    login(client, world, "editor")

    client.post("/admin/photos/reviewitem/", {"action": action, "_selected_action": [world["label"].pk], "into": "Wolf"})

    assert AuditEvent.objects.filter(action__in=[event, AuditEvent.Action.RENAME], label_name__in=["Dog", "Wolf"]).exists()


@pytest.mark.parametrize("role", ROLES)
def test_custom_admin_views_by_role(client, world, role):
    login(client, world, role)
    photo, flagged, label = world["photo"], world["flagged"], world["label"]
    review = f"/admin/photos/photo/{photo.pk}/review/"
    decide = f"/admin/photos/moderationcase/{flagged.pk}/decide/"

    see_review = client.get(review)
    approve = client.post(review, {"action": "approve", "label": label.pk})
    see_decide = client.get(decide)
    clear = client.post(decide, {"decision": "clear", "note": "fine"})

    label.refresh_from_db()
    flagged.refresh_from_db()
    assert allowed(see_review) is (role in STAFF)
    assert (label.review_state == Label.Review.APPROVED) is (role in {"editor", "superuser"})
    assert allowed(see_decide) is (role in {"moderator", "superuser"})
    assert (flagged.moderation_state == Photo.Moderation.CLEARED) is (role in {"moderator", "superuser"})
    audited = set(AuditEvent.objects.values_list("action", flat=True))
    assert (AuditEvent.Action.APPROVE in audited) is (role in {"editor", "superuser"})
    assert (AuditEvent.Action.CLEAR in audited) is (role in {"moderator", "superuser"})
    for response in (approve, clear):
        assert response.status_code in (302, 403)


@pytest.mark.parametrize("role", ROLES)
def test_thresholds_change_only_by_superusers_and_on_the_record(client, world, role):
    login(client, world, role)
    thresholds = world["objects"]["photos.ModerationSettings"]

    client.post(f"/admin/photos/moderationsettings/{thresholds.pk}/change/",
                {"display_threshold": "60", "flag_threshold": "75", "category_thresholds": "{}"})

    thresholds.refresh_from_db()
    changed = thresholds.display_threshold == 60.0
    assert changed is (role == "superuser")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.THRESHOLDS).exists() is changed


# --- the site ---------------------------------------------------------------------------

SITE_GETS = {
    # view -> roles that get a 200 (others: login redirect or 404)
    "/photos/": {"site", "editor", "moderator", "superuser", "owner"},
    "/photos/status/": {"site", "editor", "moderator", "superuser", "owner"},
    "/photos/trash/": {"site", "editor", "moderator", "superuser", "owner"},
    "/photos/reports/": {"site", "editor", "moderator", "superuser", "owner"},
    "/gallery/": set(ROLES) | {"owner"},
}


def act_as(client, world, role) -> None:
    """Sign in as the role, or as the private photo's owner."""
    if role == "owner":
        client.force_login(world["photo"].owner)
    else:
        login(client, world, role)


@pytest.mark.parametrize("role", [*ROLES, "owner"])
def test_site_views_by_role(client, world, role):
    act_as(client, world, role)
    photo = world["photo"]  # private

    for url, roles in SITE_GETS.items():
        assert (client.get(url).status_code == 200) is (role in roles), url
    image = client.get(f"/photos/{photo.uid}/image/")
    assert (image.status_code == 200) is (role in {"owner", "editor", "moderator", "superuser"})
    display = client.get(f"/photos/{photo.uid}/display/")
    assert (display.status_code == 200) is (role in {"owner", "editor", "moderator", "superuser"})
    assert client.get(f"/photos/{photo.uid}/stream/").status_code == 404  # a photo has no stream, for anyone
    page = client.get(f"/photos/{photo.uid}/")
    assert (page.status_code == 200) is (role == "owner")  # staff work in the admin
    visibility = client.post(f"/photos/{photo.uid}/visibility/", {"visibility": "public"})
    assert Photo.objects.get(pk=photo.pk).visibility == ("public" if role == "owner" else "private"), visibility
    client.post(f"/photos/{photo.uid}/describe/", {"title": "Mine", "caption": ""})  # the owner's words alone
    assert Photo.objects.get(pk=photo.pk).title == ("Mine" if role == "owner" else "")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DESCRIBE).exists() is (role == "owner")
    before = snapshot()
    client.post(f"/photos/{photo.uid}/delete/")  # to the trash: the owner's alone
    trashed = Photo.objects.filter(pk=photo.pk, trashed_at__isnull=False).exists()
    assert trashed is (role == "owner")
    if trashed:
        client.post("/photos/undo-trash/")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.TRASH).exists()
        assert AuditEvent.objects.filter(action=AuditEvent.Action.RESTORE).exists()
        before = snapshot()
    else:
        assert snapshot() == before
    current = Photo.objects.get(pk=photo.pk).visibility
    flip = {"public": "private", "private": "public"}
    for action, undo in ((flip[current], current), ("trash", "restore")):
        client.post("/photos/bulk/", {"action": action, "confirmed": "1", "ids": [str(photo.uid)]})
        assert (snapshot() == before) is (role != "owner"), action
        if role == "owner":
            client.post("/photos/bulk/", {"action": undo, "ids": [str(photo.uid)]})
            before = snapshot()
    client.post(f"/photos/{photo.uid}/appeal/", {"text": "restore it"})  # not removed: nothing to appeal, for anyone
    assert snapshot() == before
    client.post(f"/photos/{photo.uid}/erase/")  # for good: the owner, or whoever may delete photos
    deleted = not Photo.objects.filter(pk=photo.pk).exists()
    assert deleted is (role in {"owner", "superuser"})
    if deleted:
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DELETE).exists()
    else:
        assert snapshot() == before
    assert json.dumps(sorted(SITE_GETS))  # the table is data, printed on failure


SITE_URLS = {
    # every route of the site (mediaapp/urls.py, photos/urls.py) -> how this file covers it
    "": "redirect", "accounts/signup/": "signup", "accounts/": "django.contrib.auth.urls", "photos/": "SITE_GETS",
    "photos/status/": "SITE_GETS", "photos/direct/": "direct", "photos/direct/confirm/": "direct",
    "photos/direct/parts/": "direct (a video's parts: test_multipart_upload.py)",
    "photos/direct/abort/": "direct (a video's parts: test_multipart_upload.py)",
    "photos/<uuid:uid>/image/": "image", "photos/<uuid:uid>/thumbnail/": "image", "photos/<uuid:uid>/delete/": "delete",
    "photos/<uuid:uid>/display/": "image", "photos/<uuid:uid>/": "owner page (and test_photo_page.py)",
    "photos/<uuid:uid>/stream/": "image (a photo has none; videos: test_video_upload.py)",
    "photos/<uuid:uid>/visibility/": "owner page (and test_photo_page.py)",
    "photos/<uuid:uid>/erase/": "delete", "photos/trash/": "SITE_GETS", "photos/bulk/": "delete",
    "photos/undo-trash/": "delete", "photos/reports/": "SITE_GETS",
    "photos/<uuid:uid>/appeal/": "delete (and test_appeals.py)",
    "photos/<uuid:uid>/describe/": "owner page (and test_library_time.py)",
    "api/photos/": "api", "api/": "api (test_api_errors.py)", "api/docs/": "api (test_api_errors.py)",
    "favicon.ico": "static", "api/labels/": "api (test_search.py)", "api/photos/<uuid:uid>/": "api", "api/schema/": "api", "gallery/": "SITE_GETS",
    "source/": "public, the running copy's source for everyone (tests/test_licences.py)",
    "gallery/<uuid:uid>/": "report", "admin/": "the admin tests above",
}


INCLUDED_APPS = {"accounts/", "admin/"}  # Django's own URLconfs, covered as a whole


def test_every_site_route_is_in_the_matrix():
    from django.urls import get_resolver

    def routes(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                if route in INCLUDED_APPS:
                    yield route
                else:
                    yield from routes(pattern, route)
            else:
                yield route

    assert set(routes(get_resolver())) <= set(SITE_URLS) | {"^static/(?P<path>.*)$", "^media/(?P<path>.*)$"}


@pytest.mark.parametrize("role", [*ROLES, "owner"])
def test_private_photo_stays_private_on_every_site_route(client, world, role):
    act_as(client, world, role)
    photo = world["photo"]  # private
    before = snapshot()

    api = client.get(f"/api/photos/{photo.uid}/")
    gallery = client.get(f"/gallery/{photo.uid}/")
    report = client.post(f"/gallery/{photo.uid}/", {"reason": "spam"})
    confirm = client.post("/photos/direct/confirm/", {"token": "forged"}, content_type="application/json")

    assert gallery.status_code == 404  # not public: not in the public pages for anyone
    # The API gives a private photo to its owner alone (owner=me, and its own URL).
    assert api.status_code == (200 if role == "owner" else 404)
    assert report.status_code in (302, 404) and not Flag.objects.filter(photo=photo).exists()
    assert confirm.status_code in (302, 400, 404)  # anonymous: to log in; others: a forged token is refused
    assert snapshot() == before


@pytest.mark.parametrize("role", ROLES)
def test_reports_on_a_public_photo(client, world, role):
    login(client, world, role)
    photo = world["photo"]
    Photo.objects.filter(pk=photo.pk).update(visibility=Photo.Visibility.PUBLIC)

    client.post(f"/gallery/{photo.uid}/", {"reason": "spam"})

    reported = Flag.objects.filter(photo=photo).exists()
    assert reported is (role != "anonymous")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.FLAG, photo=photo).exists() is reported
    photo.refresh_from_db()
    assert (photo.moderation_state == Photo.Moderation.FLAGGED) is (role in STAFF)  # one new account is no evidence


@pytest.mark.parametrize("role", [*ROLES, "owner"])
def test_a_trashed_photo_is_its_owners_alone_unless_a_moderator_must_judge_it(client, world, role):
    """Staff still opened trashed photos (image, display, thumbnail, admin list) though
    the owner was told no one else would see them (issue 19, finding 3). A trashed photo
    with an open case (flagged, or reported and not decided) stays before moderators: a
    photo trashed to dodge a report is still judged."""
    photo, flagged = world["photo"], world["flagged"]
    Photo.objects.filter(pk__in=[photo.pk, flagged.pk]).update(trashed_at=timezone.now())
    default_storage.save(flagged.image.name, ContentFile(photo_bytes("rocket")))
    act_as(client, world, role)

    quiet = {kind: client.get(f"/photos/{photo.uid}/{kind}/").status_code for kind in ("image", "display")}
    assert set(quiet.values()) == ({200} if role == "owner" else {404}), quiet
    if role in STAFF:
        listing = client.get("/admin/photos/photo/").content.decode()
        assert "p.jpg" not in listing
        assert client.get(admin_url("photos.Photo", "change", photo)).status_code in (302, 404)
        review = client.get("/admin/photos/reviewitem/").content.decode()
        assert "p.jpg" not in review
    judged = client.get(f"/photos/{flagged.uid}/display/").status_code
    assert (judged == 200) is (role in {"owner", "editor", "moderator", "superuser"})
    if role in {"moderator", "superuser"}:
        assert "f.jpg" in client.get("/admin/photos/moderationcase/").content.decode()
