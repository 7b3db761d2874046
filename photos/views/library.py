"""My photos: the library with its upload form and live status, bulk actions, the
trash, and moving one photo there or deleting it for good."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit
from django.conf import settings

from ..forms import UploadForm
from ..models import Photo
from ..pipelines import media_storage
from ..selectors import search
from ..selectors.labels import with_visible_labels
from ..selectors.library import PAGE_SIZE, owner_page, photos_for_owner
from ..services import erasure
from ..services.photos import TRASH_DAYS, photos_restore, photos_set_visibility, photos_trash
from ..services.uploads import photos_receive
from ..tasks import erase_photos
from .common import photo_json, rate, wants_json

logger = logging.getLogger(__name__)

MAX_STATUS_IDS = 200
MAX_SELECTED = 500  # photos one bulk action takes (a few pages' worth)
UNDO_KEY = "photos_undo_trash"  # the uids the last "move to trash" moved, for its Undo


@login_required
@ratelimit(key="user", rate=rate("UPLOAD_RATE"), method="POST", group="uploads")
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
            if accepted and not rejected and not wants_json(request):
                messages.success(request, f"Uploaded {len(accepted)} photo{'s' if len(accepted) != 1 else ''}; labels appear here when analysis finishes.")
                return HttpResponseRedirect(reverse("photos:mine"))
            status = 200 if accepted else 400
        else:
            status = 400
        if wants_json(request):
            return JsonResponse(
                {
                    "accepted": [photo_json(p) for p in accepted],
                    "rejected": [{"filename": f, "error": f"{f} {m}"} for f, m in rejected],
                    "errors": form.errors.get_json_data() if form.errors else {},
                },
                status=status,
            )
        for filename, message in rejected:
            messages.error(request, f"{filename} {message} It was not stored.")
        if accepted:
            messages.success(request, f"Uploaded {len(accepted)} photo{'s' if len(accepted) != 1 else ''}.")
    query = request.GET.get("q", "")[:200].strip()
    sort = request.GET.get("sort", "taken")
    # The timeline (latest taken first) by default; without a search, relevance means nothing.
    sort = sort if sort in search.SORTS and (query or sort != "relevance") else "taken"
    page = facets = None
    if query:
        # A search of the owner's own library: the gallery's grammar over every photo of
        # theirs out of the trash, private ones included; pages by number, as the gallery.
        try:
            number = min(10_000, max(1, int(request.GET.get("page", "1"))))
        except ValueError:
            number = 1
        page = search.page_of(with_visible_labels(search.owner_photos(owner=request.user, search=query, sort=sort)),
                              number, PAGE_SIZE)
        photos, next_cursor, cursor = list(page), "", ""
        in_query = {t.lower() for t in search.search_terms(query)[0]}
        facets = [(name, n) for name, n in search.label_facets(query, owner=request.user)[0] if name.lower() not in in_query]
    else:
        cursor = request.GET.get("after", "")[:40]
        photos, next_cursor = owner_page(owner=request.user, cursor=cursor,
                                         by="taken_at" if sort == "taken" else "created_at")
    return render(
        request,
        "photos/my_photos.html",
        {"form": form, "photos": photos, "next_cursor": next_cursor, "paged": bool(cursor),
         "query": query, "sort": sort, "page": page, "facets": facets,
         "relevance_window": search.RELEVANCE_WINDOW,
         "max_bytes": settings.PHOTOS_MAX_UPLOAD_BYTES, "direct_upload": media_storage().direct_uploads,
         "max_video_bytes": settings.PHOTOS_MAX_VIDEO_BYTES, "max_video_ms": int(settings.PHOTOS_MAX_VIDEO_SECONDS * 1000),
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
    photos = photos_for_owner(owner=request.user).filter(uid__in=uids)
    return JsonResponse({"photos": [photo_json(p) for p in photos]})


@login_required
@require_GET
def trash(request):
    """The owner's trash: photos they moved there, restorable for 30 days."""
    cursor = request.GET.get("after", "")[:40]
    photos, next_cursor = owner_page(owner=request.user, cursor=cursor, trashed=True)
    for photo in photos:
        photo.erase_on = photo.trashed_at + timedelta(days=TRASH_DAYS)
    return render(request, "photos/trash.html", {"photos": photos, "next_cursor": next_cursor, "paged": bool(cursor),
                                                 "days": TRASH_DAYS})


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
    back = "photos:trash" if action in ("restore", "erase") else _library_page(request)
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
        return render(request, "photos/confirm.html", {**_confirmation(action, photos), "next": back if back.startswith("/") else ""})
    return _bulk_apply(request, action, photos)


def _library_page(request) -> str:
    """Where a bulk action on My photos returns: the page it came from, its search, sort
    and page kept (a path on this site under My photos only), else My photos."""
    mine = reverse("photos:mine")
    target = request.POST.get("next", "")
    path, _, query = target.partition("?")
    if path == mine and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return f"{mine}?{query}" if query else mine
    return mine


def _bulk_apply(request, action: str, photos: list[Photo]):
    ids = [p.id for p in photos]
    if action in ("public", "private"):
        photos_set_visibility(photo_ids=ids, actor=request.user, visibility=action)
        done = len(ids)  # already so counts as done: the user sees what they asked for
    elif action == "trash":
        done = photos_trash(photo_ids=ids, actor=request.user)
        request.session[UNDO_KEY] = [str(p.uid) for p in photos]
    elif action == "restore":
        done = photos_restore(photo_ids=ids, actor=request.user)
    else:
        done = _erase_many(ids, request.user)
        if done is None:  # handed to the worker
            request.session.pop(UNDO_KEY, None)
            messages.success(request, f"Deleting {len(ids)} photos for good: they leave the trash in a moment.")
            return redirect("photos:trash")
    if action != "trash":  # a move to the trash is said by its Undo banner, not twice
        request.session.pop(UNDO_KEY, None)
        messages.success(request, BULK_ACTIONS[action][1].format(n=done, s="" if done == 1 else "s"))
    return redirect("photos:trash" if action in ("restore", "erase") else _library_page(request))


ERASE_IN_REQUEST = 10  # more than this (each a storage sweep, in AWS a DynamoDB tombstone) goes to the worker


def _erase_many(ids: list[int], actor) -> int | None:
    """Delete photos for good: in the request for a few, on the worker for more (None).
    If the broker cannot take the job, here after all: nothing is left half done."""
    if len(ids) > ERASE_IN_REQUEST:
        try:
            erase_photos.delay(ids, actor.pk)
            return None
        except Exception as exc:  # kombu's OperationalError and friends
            logger.warning("could not hand %s erasures to the worker, doing them now: %s", len(ids), exc)
    return sum(1 for pid in ids if erasure.photo_delete(photo_id=pid, actor=actor))


@login_required
@require_http_methods(["POST"])
def undo_trash(request):
    """Undo the last move to the trash (the uids are in the session, only the owner's)."""
    uids = request.session.pop(UNDO_KEY, [])
    ids = list(Photo.objects.filter(uid__in=uids, owner=request.user).values_list("id", flat=True))
    done = photos_restore(photo_ids=ids, actor=request.user)
    messages.success(request, f"Restored {done} photo{'' if done == 1 else 's'}.")
    return redirect("photos:mine")


def _confirmation(action: str, photos: list[Photo]) -> dict:
    n = len(photos)
    s = "" if n == 1 else "s"
    kinds = {photo.kind for photo in photos}
    noun = "video" if kinds == {Photo.Kind.VIDEO} else "item" if len(kinds) > 1 else "photo"
    if action == "trash":
        title, button = f"Move {n} {noun}{s} to the trash?", "Move to trash"
        text = ("No one else will see them from now on. You can restore them from the trash for "
                f"{TRASH_DAYS} days; after that they are erased.")
    else:
        title, button = f"Delete {n} {noun}{s} for good?", "Delete for good"
        text = "They are erased with their labels, thumbnails and every stored copy. This cannot be undone."
    return {"action": action, "photos": photos, "title": title, "text": text, "button": button,
            "danger": action == "erase", "back": "photos:trash" if action == "erase" else "photos:mine"}


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
    if not erasure.photo_delete(photo_id=photo.id, actor=request.user):
        raise Http404("No such photo.")
    request.session.pop(UNDO_KEY, None)  # nothing left to undo
    if wants_json(request):
        return JsonResponse({"deleted": str(uid)})
    messages.success(request, f"Deleted {photo.original_filename} for good.")
    return redirect("photos:trash" if photo.owner_id == request.user.pk else "photos:mine")
