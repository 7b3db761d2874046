"""The JSON API for the photo-sharing app: public photos with the labels the gallery
shows (approved ones marked),
label search, and uploads for signed-in users. `/api/` is its index, `/api/schema/` the
OpenAPI 3 schema that describes exactly these views (the tests fuzz them against it with
schemathesis), `/api/docs/` the schema browsable in Swagger UI, served from this site.

Sessions authenticate; unsafe methods need the CSRF token (X-CSRFToken), like the site.
Every error under /api/ is JSON, `{"error": "..."}`, whatever produced it (a view, a
missing route, a method not allowed, a refused CSRF check, debug mode's 404 page).

Hand-written rather than django-ninja or DRF: three small views whose rules (label
search, public visibility, upload checks) live in the selectors and services the site
uses too; a framework would add a second way to express them and a pydantic or DRF
stack for what is ~150 lines. The schema is written out and checked against the views
by schemathesis, which is what a generated one would guarantee.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited

from .forms import UploadForm
from .models import Label, Photo
from .selectors import search
from .selectors import suggestions
from .selectors.labels import specific_first, with_visible_labels
from .selectors.titles import public_title, reading_order, with_text_lines
from .services.uploads import photos_receive

PAGE_SIZE = 50
MAX_QUERY = 200
MAX_PAGE = 10_000
MAX_PREFIX = 100


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _public_photos(query: str, sort: str = "newest"):
    # The labels the gallery shows (approved, and machine labels at or above the display
    # threshold), so a search result always says why it matched.
    return with_text_lines(with_visible_labels(search.public_photos(query, sort)))


def _photo(photo: Photo, *, viewer=None) -> dict:
    """A photo as the API shows it. Its owner gets when it was taken to the second; anyone
    else the month, as the gallery's headings show (the renditions carry no EXIF dates)."""
    owner_view = viewer is not None and viewer.is_authenticated and photo.owner_id == viewer.pk
    taken = photo.taken_local
    return {
        "id": str(photo.uid),
        "kind": photo.kind,
        "duration_ms": photo.duration_ms,
        # The owner's title, else named by its labels, never by the uploaded file's name
        # (it may carry a person's name, a place, a document).
        "title": public_title(photo),
        "caption": photo.caption,
        "taken_at": taken.isoformat() if owner_view else None,
        "taken_month": f"{taken:%Y-%m}",
        "taken_offset_minutes": photo.taken_offset if owner_view else None,
        "taken_from": photo.taken_from,
        "width": photo.width,
        "height": photo.height,
        "created_at": photo.created_at.isoformat(),
        "image_url": reverse("photos:image", args=[photo.uid]),
        "thumbnail_url": reverse("photos:thumbnail", args=[photo.uid]) if photo.thumbnail else None,
        "labels": [
            {"name": lb.name, "confidence": None if lb.confidence is None else round(lb.confidence, 2),
             "approved": lb.review_state == Label.Review.APPROVED}
            for lb in specific_first(getattr(photo, "visible_labels", []))
        ],
        # The lines of text found in it that the pages show, in reading order.
        "text": [line.text for line in reading_order(getattr(photo, "lines", []))],
    }


# The method is checked before CSRF (an undeclared method gets 405, not a CSRF 403);
# uploads are then CSRF-protected exactly as the site's forms are.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def photos(request):
    if request.method == "POST":
        if request.user.is_authenticated and is_ratelimited(
            request, group="uploads", key="user", rate=settings.UPLOAD_RATE, method="POST", increment=True
        ):
            return _error(429, "Too many uploads in a short time; wait a while and try again.")
        return _upload(request)
    query = request.GET.get("q", "")
    if len(query) > MAX_QUERY:
        return _error(400, f"q is longer than {MAX_QUERY} characters.")
    sort = request.GET.get("sort", "newest")
    if sort not in search.SORTS:
        return _error(400, f"sort must be one of {', '.join(search.SORTS)}.")
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        return _error(400, "page must be a positive integer.")
    if not 1 <= number <= MAX_PAGE:
        return _error(400, f"page must be between 1 and {MAX_PAGE}.")
    owner = request.GET.get("owner")
    if owner not in (None, "me"):
        return _error(400, "owner must be me (your own photos) or absent (public photos).")
    if owner == "me":
        if not request.user.is_authenticated:
            return _error(401, "Log in to list your own photos.")
        # Every photo of the caller's out of the trash, private ones included.
        photos = with_text_lines(with_visible_labels(search.owner_photos(owner=request.user, search=query, sort=sort)))
    else:
        photos = _public_photos(query, sort)
    page = search.page_of(photos, number, PAGE_SIZE)
    return JsonResponse({"page": number, "has_next": page.has_next(), "results": [_photo(p, viewer=request.user) for p in page]})


@csrf_exempt
@require_GET
def labels(request):
    """Suggestions for a search box: names starting with ``prefix`` (or with a later word
    that does) that the same search would find, with how many photos: labels of public
    photos, or with ``owner=me`` the caller's own labels and words."""
    prefix = request.GET.get("prefix", "")
    if len(prefix) > MAX_PREFIX:
        return _error(400, f"prefix is longer than {MAX_PREFIX} characters.")
    owner = request.GET.get("owner")
    if owner not in (None, "me"):
        return _error(400, "owner must be me (your own photos) or absent (public photos).")
    prefix = prefix.replace("\x00", "")
    if owner == "me":
        if not request.user.is_authenticated:
            return _error(401, "Log in to get suggestions from your own photos.")
        found = suggestions.owner_suggestions(owner=request.user, prefix=prefix)
    else:
        found = suggestions.public_suggestions(prefix)
    return JsonResponse({"labels": [name for name, _ in found],
                         "suggestions": [{"name": name, "photos": n} for name, n in found]})


@csrf_exempt
@require_GET
def photo_detail(request, uid):
    """A public photo, or one of the caller's own (private ones included); 404 for
    anything else, so nobody learns that someone's private photo exists."""
    photo = _public_photos("").filter(uid=uid).first()
    if photo is None and request.user.is_authenticated:
        photo = (with_text_lines(with_visible_labels(search.owner_photos(owner=request.user)))
                 .filter(uid=uid).first())
    if photo is None:
        return _error(404, "No such photo.")
    return JsonResponse(_photo(photo, viewer=request.user))


def _upload(request):
    # Not signed in is a 401 whatever the CSRF token: checked before it.
    if not request.user.is_authenticated:
        return _error(401, "Log in to upload.")
    return _checked_upload(request)


@csrf_protect
def _checked_upload(request):
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _error(400, "No valid upload.", details=form.errors.get_json_data())
    outcome = photos_receive(owner=request.user, files=form.cleaned_data["photos"], visibility=form.visibility)
    accepted = [{"id": str(p.uid), "filename": p.original_filename, "status": p.status} for p in outcome.accepted]
    rejected = [{"filename": name, "error": f"{name} {message}"} for name, message in outcome.rejected]
    return JsonResponse({"accepted": accepted, "rejected": rejected}, status=201 if accepted else 400)


_PHOTO = {
    "type": "object",
    "required": ["id", "kind", "duration_ms", "title", "caption", "taken_at", "taken_month", "taken_offset_minutes", "taken_from", "width",
                 "height", "created_at", "image_url", "thumbnail_url", "labels", "text"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string", "enum": ["photo", "video"]},
        "duration_ms": {"type": "integer", "nullable": True, "description": "A video's length; null for a photo."},
        "title": {"type": "string", "description": "The owner's title, else named by the photo's labels."},
        "caption": {"type": "string", "description": "The owner's caption; empty when none."},
        "taken_at": {"type": "string", "nullable": True, "description":
                     "When it was taken, as the camera's clock read (no zone: see taken_offset_minutes); "
                     "only to its owner, null to anyone else."},
        "taken_month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description":
                        "The month it was taken (or uploaded, when taken_from is upload)."},
        "taken_offset_minutes": {"type": "integer", "nullable": True, "description":
                                 "The camera's UTC offset when the file says it; only to the owner."},
        "taken_from": {"type": "string", "enum": ["camera", "upload"], "description":
                       "camera: the file's EXIF date; upload: the file has none, the upload time stands in."},
        "width": {"type": "integer", "nullable": True},
        "height": {"type": "integer", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "image_url": {"type": "string"},
        "thumbnail_url": {"type": "string", "nullable": True},
        "labels": {"type": "array", "items": {
            "type": "object", "required": ["name", "confidence", "approved"],
            "properties": {"name": {"type": "string"}, "confidence": {"type": "number", "nullable": True},
                           "approved": {"type": "boolean"}}}},
        "text": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def schema_document() -> dict:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "mediaapp photos API", "version": "1.0.0",
                 "description": "Public photos with approved labels; uploads for signed-in users (session + CSRF)."},
        "paths": {
            "/api/photos/": {
                "get": {
                    "operationId": "listPhotos",
                    "summary": "Public photos, or with owner=me the caller's own (private ones included); q "
                               "searches labels and text found in photos (words required, NOT or - excludes, parents "
                               "match), as the gallery does; sort newest (uploaded), taken (date taken) or by relevance.",
                    "parameters": [
                        {"name": "owner", "in": "query", "required": False, "schema": {"type": "string", "enum": ["me"]}},
                        {"name": "q", "in": "query", "required": False, "schema": {"type": "string", "maxLength": MAX_QUERY}},
                        {"name": "page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                        {"name": "sort", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": list(search.SORTS), "default": "newest"}},
                    ],
                    "responses": {
                        "200": {"description": "A page of photos", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["page", "has_next", "results"],
                            "properties": {"page": {"type": "integer"}, "has_next": {"type": "boolean"},
                                           "results": {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}}},
                            "additionalProperties": False}}}},
                        "400": {"description": "Bad parameters", "content": error},
                        "401": {"description": "owner=me without signing in", "content": error},
                    },
                },
                "post": {
                    "operationId": "uploadPhotos",
                    "summary": "Upload photos (signed-in users; send the CSRF token as X-CSRFToken).",
                    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                        "type": "object", "required": ["photos"],
                        "properties": {"photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                       "public": {"type": "boolean"}}}}}},
                    "responses": {
                        "201": {"description": "Accepted (and maybe some rejected) files"},
                        "400": {"description": "Nothing accepted"},
                        "401": {"description": "Not signed in", "content": error},
                        "403": {"description": "CSRF token missing"},
                    },
                },
            },
            "/api/labels/": {
                "get": {
                    "operationId": "suggestLabels",
                    "summary": "Search suggestions: names starting with prefix (or with a later word that does) that "
                               "the same search finds, with how many photos.",
                    "description": "Without owner: labels of public photos (counts renewed every 10 minutes). "
                                   "With owner=me: the caller's own labels, words found in their photos and words of "
                                   "their titles and captions, counted live.",
                    "parameters": [{"name": "prefix", "in": "query", "required": False,
                                    "schema": {"type": "string", "maxLength": MAX_PREFIX}},
                                   {"name": "owner", "in": "query", "required": False,
                                    "schema": {"type": "string", "enum": ["me"]}}],
                    "responses": {
                        "200": {"description": "At most 10, names starting with the prefix first, then by photos",
                                "content": {"application/json": {"schema": {
                            "type": "object", "required": ["labels", "suggestions"], "additionalProperties": False,
                            "properties": {
                                "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                                "suggestions": {"type": "array", "maxItems": 10, "items": {
                                    "type": "object", "required": ["name", "photos"], "additionalProperties": False,
                                    "properties": {"name": {"type": "string"},
                                                   "photos": {"type": "integer", "minimum": 1}}}}}}}}},
                        "400": {"description": "Bad parameters", "content": error},
                        "401": {"description": "owner=me without being logged in", "content": error},
                    },
                },
            },
            "/api/photos/{id}/": {
                "get": {
                    "operationId": "getPhoto",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}],
                    "responses": {
                        "200": {"description": "A public photo, or one of the caller's own",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Photo"}}}},
                        "404": {"description": "No such photo (or not one the caller may see)", "content": error},
                    },
                },
            },
        },
        "components": {"schemas": {"Photo": _PHOTO, "Error": _ERROR}},
    }


@csrf_exempt
@require_GET
def schema(request):
    return JsonResponse(schema_document())


@csrf_exempt
@require_GET
def index(request):
    """What the API offers, with links."""
    return JsonResponse({
        "name": "mediaapp photos API",
        "version": schema_document()["info"]["version"],
        "links": {
            "photos": request.build_absolute_uri(reverse("api-photos")),
            "photo": request.build_absolute_uri(reverse("api-photos")) + "{id}/",
            "labels": request.build_absolute_uri(reverse("api-labels")) + "?prefix={prefix}",
            "schema": request.build_absolute_uri(reverse("api-schema")),
            "docs": request.build_absolute_uri(reverse("api-docs")),
        },
        "authentication": "Django session (log in on the site); unsafe methods need the CSRF token as X-CSRFToken.",
    })


@require_GET
def docs(request):
    """The schema in Swagger UI (its files come from this site's static files)."""
    from django.shortcuts import render

    return render(request, "photos/api_docs.html", {"schema_url": reverse("api-schema")})


class JsonErrorsMiddleware:
    """Errors under /api/ in JSON whatever produced them: Django's 404 (its debug page
    too), 405 from require_http_methods, 403s and 500s. Responses that are JSON already
    pass untouched; an Allow header is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith("/api/") and request.path != reverse("api-docs") and response.status_code >= 400
                and not response.get("Content-Type", "").startswith("application/json")):
            from http import HTTPStatus

            allow = response.get("Allow")
            phrase = HTTPStatus(response.status_code).phrase if response.status_code in HTTPStatus._value2member_map_ else "Error"
            message = {404: "Not found.", 405: f"Method not allowed{f'; use {allow}' if allow else ''}."}.get(
                response.status_code, f"{phrase}.")
            replacement = _error(response.status_code, message)
            if allow:
                replacement["Allow"] = allow
            return replacement
        return response


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: JSON for API clients, Django's page for everyone else."""
    if request.path.startswith("/api/"):
        return _error(403, "CSRF check failed: send the csrftoken cookie's value as the X-CSRFToken header.")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


def not_found(request, exception=None):
    """The project's 404 handler: API clients get JSON (e.g. for an id that is not a
    UUID and so matches no URL), everyone else the site's page."""
    if request.path.startswith("/api/"):
        return _error(404, "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
