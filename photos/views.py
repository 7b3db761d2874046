"""Views: parse the request, call a service or selector, render."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from . import selectors, services
from .forms import FlagForm, SignUpForm, UploadForm
from .uploading import photos_receive
from .models import Photo

logger = logging.getLogger(__name__)

MAX_STATUS_IDS = 200
MAX_SELECTED = 500  # photos one bulk action takes (a few pages' worth)
UNDO_KEY = "photos_undo_trash"  # the uids the last "move to trash" moved, for its Undo


def rate_limited(request, exception=None):
    """django-ratelimit's answer (RATELIMIT_VIEW): 429, in the site's style or as JSON."""
    message = "Too many requests from you in a short time. Please wait a while and try again."
    if request.path.startswith("/api/") or _wants_json(request):
        return JsonResponse({"error": message}, status=429, headers={"Retry-After": "3600"})
    response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = "3600"
    return response


def _rate(setting: str):
    """django-ratelimit's rate as a callable, so it reads the setting on each request."""
    return lambda group, request: getattr(settings, setting)


@require_GET
def home(request):
    """The front door: one's own photos when signed in, the public gallery otherwise."""
    return redirect("photos:mine" if request.user.is_authenticated else "gallery")


@ratelimit(key="ip", rate=_rate("SIGNUP_RATE"), method="POST")
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("photos:mine")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("photos:mine")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@ratelimit(key="user", rate=_rate("UPLOAD_RATE"), method="POST", group="uploads")
@require_http_methods(["GET", "POST"])
def my_photos(request):
    form = UploadForm()
    rejected: list[tuple[str, str]] = []
    accepted: list[Photo] = []
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            outcome = photos_receive(owner=request.user, files=form.cleaned_data["photos"], visibility=form.visibility)
            accepted, rejected = outcome.accepted, outcome.rejected
            if accepted and not rejected and not _wants_json(request):
                messages.success(request, f"Uploaded {len(accepted)} photo{'s' if len(accepted) != 1 else ''}; labels appear here when analysis finishes.")
                return HttpResponseRedirect(reverse("photos:mine"))
            status = 200 if accepted else 400
        else:
            status = 400
        if _wants_json(request):
            return JsonResponse(
                {
                    "accepted": [_photo_json(p) for p in accepted],
                    "rejected": [{"filename": f, "error": f"{f} {m}"} for f, m in rejected],
                    "errors": form.errors.get_json_data() if form.errors else {},
                },
                status=status,
            )
        for filename, message in rejected:
            messages.error(request, f"{filename} {message} It was not stored.")
        if accepted:
            messages.success(request, f"Uploaded {len(accepted)} photo{'s' if len(accepted) != 1 else ''}.")
    cursor = request.GET.get("after", "")[:40]
    photos, next_cursor = selectors.owner_page(owner=request.user, cursor=cursor)
    return render(
        request,
        "photos/my_photos.html",
        {"form": form, "photos": photos, "next_cursor": next_cursor, "paged": bool(cursor),
         "max_bytes": settings.PHOTOS_MAX_UPLOAD_BYTES, "direct_upload": settings.PHOTOS_STORAGE == "s3",
         "in_trash": Photo.objects.filter(owner=request.user, trashed_at__isnull=False).count(),
         "undo": request.session.get(UNDO_KEY, [])},
        status=status,
    )


@login_required
@require_GET
def my_photos_status(request):
    """Status and visible labels of the user's photos, for the page's live updates."""
    try:
        uids = [uuid.UUID(u) for u in request.GET.get("ids", "").split(",") if u][:MAX_STATUS_IDS]
    except ValueError:
        return JsonResponse({"error": "ids must be photo ids separated by commas"}, status=400)
    photos = selectors.photos_for_owner(owner=request.user).filter(uid__in=uids)
    return JsonResponse({"photos": [_photo_json(p) for p in photos]})


def _photo_json(photo: Photo) -> dict:
    labels = getattr(photo, "visible_labels", None)
    if labels is None:
        labels = list(photo.labels.filter(selectors.visible_labels_q()))
    return {
        "id": str(photo.uid),
        "filename": photo.original_filename,
        "status": photo.status,
        "status_display": photo.get_status_display(),
        "status_reason": photo.status_reason,
        "moderation": photo.moderation_state,
        "visibility": photo.visibility,
        "pending": photo.is_pending,
        # In the page's order (specific first) and with the page's rounding, so a live
        # update and a reload show the same thing.
        "labels": [{"name": lb.name, "confidence": round(lb.confidence, 1) if lb.confidence is not None else None,
                    "percent": floatformat(lb.confidence, 0) if lb.confidence is not None else None}
                   for lb in selectors.specific_first(labels)],
        # A removed photo's thumbnail is no one's to see, its owner's included (it 404s).
        "thumbnail": reverse("photos:thumbnail", args=[photo.uid])
        if photo.thumbnail and not photo.withheld else None,
        # Removed photos get no thumbnail: the page must not keep asking for one.
        "thumbnail_pending": not photo.thumbnail and not photo.withheld,
        "url": reverse("photos:detail", args=[photo.uid]),
        "delete_url": reverse("photos:delete", args=[photo.uid]),
    }


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_GET
def photo_file(request, uid, kind: str):
    """The image or its thumbnail, only for those allowed to see the photo. The original
    goes to its owner (and superusers) only; everyone else, staff included, gets the
    EXIF-free display rendition. Local files are streamed; S3 objects are redirected to a
    short-lived presigned URL."""
    photo = get_object_or_404(Photo, uid=uid)
    if not selectors.photo_can_view(user=request.user, photo=photo):
        raise Http404("No such photo.")
    # "display": the rendition whoever asks (the owner's photo page shows it too).
    original = kind == "image" and selectors.photo_gets_original(user=request.user, photo=photo)
    download = original and request.GET.get("download") == "1"
    if kind == "thumbnail":
        name = photo.thumbnail.name if photo.thumbnail else ""
    elif original:
        name = photo.image.name
    else:
        try:
            name = services.photo_display_rendition(photo=photo)
        except (FileNotFoundError, OSError, services.RenditionError):
            raise Http404("Missing from storage or unreadable.") from None
    if not name:
        raise Http404("Not made yet.")
    disposition = content_disposition(photo.original_filename or f"{photo.uid}", attachment=download)
    if settings.PHOTOS_STORAGE == "s3":
        return HttpResponseRedirect(default_storage.url(name, parameters={"ResponseContentDisposition": disposition}))
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("Missing from storage.") from None
    content_type = (photo.content_type or "application/octet-stream") if original else "image/jpeg"
    response = FileResponse(handle, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = disposition
    return response


def content_disposition(filename: str, *, attachment: bool) -> str:
    """inline, or attachment with the original name (RFC 6266: an ASCII fallback and the
    UTF-8 name), never a header injection."""
    from urllib.parse import quote

    if not attachment:
        return "inline"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)[:150] or "photo"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename[:150], safe='')}"


GALLERY_PAGE = 24


@require_GET
def gallery(request):
    """Public photos, searchable by label (AND / NOT, parents match) and by text found in
    them, newest first or most relevant first, with the top labels of the results."""
    query = request.GET.get("q", "")[:200]
    sort = request.GET.get("sort", "newest")
    sort = sort if sort in selectors.SORTS else "newest"
    try:
        number = min(10_000, max(1, int(request.GET.get("page", "1"))))
    except ValueError:
        number = 1
    photos = selectors.with_text_lines(selectors.with_visible_labels(selectors.public_photos(query, sort)))
    page = selectors.page_of(photos, number, GALLERY_PAGE)
    facets, sampled = selectors.label_facets(query)
    in_query = {t.lower() for t in selectors.search_terms(query)[0]}
    facets = [(name, n) for name, n in facets if name.lower() not in in_query]  # a refinement, not a repeat
    return render(request, "photos/gallery.html", {
        "page": page, "query": query, "sort": sort, "facets": facets, "sampled": sampled,
        "facet_sample": selectors.FACET_SAMPLE, "relevance_window": selectors.RELEVANCE_WINDOW,
    })


@ratelimit(key="user_or_ip", rate=_rate("REPORT_RATE"), method="POST")
@require_http_methods(["GET", "POST"])
def gallery_photo(request, uid):
    """One public photo with its labels, and a form to flag it (signed-in users)."""
    photo = get_object_or_404(selectors.with_text_lines(selectors.with_visible_labels(Photo.objects.all())), uid=uid)
    if not selectors.photo_is_public(photo):
        raise Http404("No such photo.")
    form = FlagForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        if form.is_valid():
            from .moderation import photo_flag

            counted = photo_flag(photo_id=photo.pk, reporter=request.user, reason=form.cleaned_data["reason"],
                                 note=form.cleaned_data["note"])
            messages.success(request, ("Thank you: moderators will look at this photo." if counted
                                        else "You already reported this photo; moderators will look at it.")
                             + " You can follow it under My reports.")
            return redirect("gallery_photo", uid=uid)
    reported = (request.user.is_authenticated
                and photo.flags.filter(reporter=request.user).order_by("-created_at").first())
    return render(request, "photos/gallery_photo.html", {"photo": photo, "form": form, "reported": reported})


@login_required
@require_GET
def photo_detail(request, uid):
    """The owner's page for one photo: large view with label boxes, text found, facts,
    moderation outcome, download, visibility and delete."""
    photo = selectors.owner_photo(owner=request.user, uid=uid)
    if photo is None:
        raise Http404("No such photo.")
    boxes = [
        {"label": label.name, "style": box_style(instance["box"])}
        for label in photo.visible_labels for instance in label.instances if isinstance(instance.get("box"), dict)
    ]
    return render(request, "photos/photo_detail.html", {
        "photo": photo, "boxes": boxes, "boxed_labels": {b["label"] for b in boxes},
        "format": (photo.content_type or "").removeprefix("image/").upper(),
    })


def box_style(box: dict) -> str:
    """CSS placing a box given as ratios of the image (Rekognition's BoundingBox)."""
    def pct(name: str) -> float:
        try:
            return min(100.0, max(0.0, float(box.get(name, 0)) * 100))
        except (TypeError, ValueError):
            return 0.0

    return f"left:{pct('left'):.2f}%;top:{pct('top'):.2f}%;width:{pct('width'):.2f}%;height:{pct('height'):.2f}%"


@login_required
@require_http_methods(["POST"])
def photo_appeal(request, uid):
    """The owner asks moderators to look again at a removed photo."""
    from .moderation import ModerationError, photo_appeal as appeal

    photo = Photo.objects.filter(uid=uid, owner=request.user).only("id").first()
    if photo is None:
        raise Http404("No such photo.")
    try:
        appeal(photo_id=photo.id, actor=request.user, text=request.POST.get("text", ""))
    except ModerationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Appeal sent: a moderator will look at the photo again. It stays hidden until then.")
    return redirect("photos:detail", uid=uid)


@login_required
@require_GET
def my_reports(request):
    """The reports the user made and what became of them."""
    from .moderation import report_outcome

    reports = list(selectors.reports_by(reporter=request.user)[:200])
    for report in reports:
        report.outcome = report_outcome(report)
        report.public = selectors.photo_is_public(report.photo)
    return render(request, "photos/my_reports.html", {"reports": reports})


@login_required
@require_http_methods(["POST"])
def photo_visibility(request, uid):
    photo = Photo.objects.filter(uid=uid).only("id").first()
    visibility = request.POST.get("visibility", "")
    if visibility not in Photo.Visibility.values:
        messages.error(request, "Choose public or private.")
        return redirect("photos:detail", uid=uid)
    changed = photo and services.photo_set_visibility(photo_id=photo.id, actor=request.user, visibility=visibility)
    if not changed:
        raise Http404("No such photo.")
    if visibility == Photo.Visibility.PUBLIC and not selectors.photo_is_public(changed):
        messages.success(request, "Public: it shows in the gallery once it is labelled and while no moderator holds it back.")
    else:
        messages.success(request, "Public: it shows in the gallery." if visibility == Photo.Visibility.PUBLIC
                         else "Private: only you see it.")
    return redirect("photos:detail", uid=uid)


@login_required
@require_http_methods(["GET", "POST"])
def photo_delete(request, uid):
    """Move one photo to the trash: GET asks first, POST does it."""
    photo = Photo.objects.filter(uid=uid, owner=request.user, trashed_at__isnull=True).first()
    if photo is None:
        raise Http404("No such photo.")
    if request.method == "GET":
        return render(request, "photos/confirm.html", _confirmation("trash", [photo]))
    return _bulk_apply(request, "trash", [photo])


@login_required
@require_http_methods(["GET", "POST"])
def photo_erase(request, uid):
    """Delete one photo for good (from the trash, or by a superuser): GET asks first."""
    photo = Photo.objects.filter(uid=uid).only("id", "uid", "original_filename", "owner_id", "thumbnail").first()
    allowed = photo is not None and (photo.owner_id == request.user.pk or request.user.has_perm("photos.delete_photo"))
    if not allowed:
        raise Http404("No such photo.")
    if request.method == "GET":
        return render(request, "photos/confirm.html", {**_confirmation("erase", [photo]),
                                                       "post_url": reverse("photos:erase", args=[photo.uid])})
    if not services.photo_delete(photo_id=photo.id, actor=request.user):
        raise Http404("No such photo.")
    request.session.pop(UNDO_KEY, None)  # nothing left to undo
    if _wants_json(request):
        return JsonResponse({"deleted": str(uid)})
    messages.success(request, f"Deleted {photo.original_filename} for good.")
    return redirect("photos:trash" if photo.owner_id == request.user.pk else "photos:mine")


@login_required
@require_GET
def trash(request):
    """The owner's trash: photos they moved there, restorable for 30 days."""
    cursor = request.GET.get("after", "")[:40]
    photos, next_cursor = selectors.owner_page(owner=request.user, cursor=cursor, trashed=True)
    for photo in photos:
        photo.erase_on = photo.trashed_at + timedelta(days=services.TRASH_DAYS)
    return render(request, "photos/trash.html", {"photos": photos, "next_cursor": next_cursor, "paged": bool(cursor),
                                                 "days": services.TRASH_DAYS})


BULK_ACTIONS = {
    # action -> (needs confirmation, message)
    "public": (False, "Made {n} photo{s} public: they show in the gallery once labelled."),
    "private": (False, "Made {n} photo{s} private."),
    "trash": (True, "Moved {n} photo{s} to the trash. You can restore them there for 30 days."),
    "restore": (False, "Restored {n} photo{s}."),
    "erase": (True, "Deleted {n} photo{s} for good."),
}


@login_required
@require_http_methods(["POST"])
def bulk(request):
    """One action on the photos selected on My photos or in the trash. Actions that lose
    something ask first (a page listing the selection); the rest apply at once."""
    action = request.POST.get("action", "")
    back = "photos:trash" if action in ("restore", "erase") else "photos:mine"
    if action not in BULK_ACTIONS:
        messages.error(request, "Choose what to do with the selected photos.")
        return redirect(back)
    uids = []
    for value in request.POST.getlist("ids")[:MAX_SELECTED]:
        try:
            uids.append(uuid.UUID(value))
        except ValueError:
            continue
    photos = list(Photo.objects.filter(uid__in=uids, owner=request.user))
    if not photos:
        messages.error(request, "Select at least one photo first.")
        return redirect(back)
    if BULK_ACTIONS[action][0] and request.POST.get("confirmed") != "1":
        return render(request, "photos/confirm.html", _confirmation(action, photos))
    return _bulk_apply(request, action, photos)


def _bulk_apply(request, action: str, photos: list[Photo]):
    ids = [p.id for p in photos]
    if action in ("public", "private"):
        services.photos_set_visibility(photo_ids=ids, actor=request.user, visibility=action)
        done = len(ids)  # already so counts as done: the user sees what they asked for
    elif action == "trash":
        done = services.photos_trash(photo_ids=ids, actor=request.user)
        request.session[UNDO_KEY] = [str(p.uid) for p in photos]
    elif action == "restore":
        done = services.photos_restore(photo_ids=ids, actor=request.user)
    else:
        done = _erase_many(ids, request.user)
        if done is None:  # handed to the worker
            request.session.pop(UNDO_KEY, None)
            messages.success(request, f"Deleting {len(ids)} photos for good: they leave the trash in a moment.")
            return redirect("photos:trash")
    if action != "trash":  # a move to the trash is said by its Undo banner, not twice
        request.session.pop(UNDO_KEY, None)
        messages.success(request, BULK_ACTIONS[action][1].format(n=done, s="" if done == 1 else "s"))
    return redirect("photos:trash" if action in ("restore", "erase") else "photos:mine")


ERASE_IN_REQUEST = 10  # more than this (each a storage sweep, in AWS a DynamoDB tombstone) goes to the worker


def _erase_many(ids: list[int], actor) -> int | None:
    """Delete photos for good: in the request for a few, on the worker for more (None).
    If the broker cannot take the job, here after all: nothing is left half done."""
    if len(ids) > ERASE_IN_REQUEST:
        from .tasks import erase_photos

        try:
            erase_photos.delay(ids, actor.pk)
            return None
        except Exception as exc:  # kombu's OperationalError and friends
            logger.warning("could not hand %s erasures to the worker, doing them now: %s", len(ids), exc)
    return sum(1 for pid in ids if services.photo_delete(photo_id=pid, actor=actor))


@login_required
@require_http_methods(["POST"])
def undo_trash(request):
    """Undo the last move to the trash (the uids are in the session, only the owner's)."""
    uids = request.session.pop(UNDO_KEY, [])
    ids = list(Photo.objects.filter(uid__in=uids, owner=request.user).values_list("id", flat=True))
    done = services.photos_restore(photo_ids=ids, actor=request.user)
    messages.success(request, f"Restored {done} photo{'' if done == 1 else 's'}.")
    return redirect("photos:mine")


def _confirmation(action: str, photos: list[Photo]) -> dict:
    n = len(photos)
    s = "" if n == 1 else "s"
    if action == "trash":
        title, button = f"Move {n} photo{s} to the trash?", "Move to trash"
        text = ("No one else will see them from now on. You can restore them from the trash for "
                f"{services.TRASH_DAYS} days; after that they are erased.")
    else:
        title, button = f"Delete {n} photo{s} for good?", "Delete for good"
        text = "They are erased with their labels, thumbnails and every stored copy. This cannot be undone."
    return {"action": action, "photos": photos, "title": title, "text": text, "button": button,
            "danger": action == "erase", "back": "photos:trash" if action == "erase" else "photos:mine"}


@login_required
@ratelimit(key="user", rate=_rate("UPLOAD_RATE"), method="POST", group="uploads")
@require_http_methods(["POST"])
def direct_upload(request):
    """Step 1 of a browser-to-S3 upload (S3 storage only): a presigned POST."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    try:
        start = services.direct_upload_start(owner=request.user, filename=str(body.get("filename", "")),
                                             content_type=str(body.get("content_type", "")), size=int(body.get("size", 0)))
    except (ValueError, TypeError) as exc:
        return JsonResponse({"error": str(exc) if isinstance(exc, services.DirectUploadError) else "Bad request."}, status=400)
    return JsonResponse(start)


@login_required
@require_http_methods(["POST"])
def direct_upload_confirm(request):
    """Step 2: the file is in the bucket; check it and create the photo."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    try:
        visibility = Photo.Visibility.PUBLIC if body.get("public") else Photo.Visibility.PRIVATE
        photo = services.direct_upload_confirm(owner=request.user, token=str(body.get("token", "")), visibility=visibility)
    except services.DirectUploadError as exc:
        return JsonResponse({"accepted": [], "rejected": [{"error": str(exc)}]}, status=400)
    except ValueError:
        return JsonResponse({"error": "Bad request."}, status=400)
    return JsonResponse({"accepted": [_photo_json(photo)], "rejected": []}, status=201)


def _direct_body(request) -> tuple[dict, JsonResponse | None]:
    """The JSON body of a direct-upload call, or the response refusing it."""
    import json

    if settings.PHOTOS_STORAGE != "s3":
        return {}, JsonResponse({"error": "Direct uploads need S3 storage."}, status=404)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}, JsonResponse({"error": "Bad request."}, status=400)
    if not isinstance(body, dict):
        return {}, JsonResponse({"error": "Bad request."}, status=400)
    return body, None
