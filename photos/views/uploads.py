"""Browser-to-S3 uploads (S3 storage only): a presigned POST for a photo, a resumable
multipart upload for a video (its parts' URLs, or cancelled), then a confirmation that
checks the file as a form upload is checked."""

from __future__ import annotations

import functools
import json
import logging

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from ..models import Photo
from ..pipelines import media_storage
from ..services import uploads
from .common import photo_json, rate

logger = logging.getLogger(__name__)
STORAGE_DOWN = "Storage could not be reached; try again in a moment (nothing was lost)."


def storage_answers(view):
    """S3 failing (unreachable, throttling, an internal error) is a 503 the page can retry,
    not a 500 page where JSON was expected."""
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("direct upload: storage failed: %s", exc)
            return JsonResponse({"error": STORAGE_DOWN, "accepted": [], "rejected": [{"error": STORAGE_DOWN}]},
                                status=503)
    return wrapped


@login_required
@ratelimit(key="user", rate=rate("UPLOAD_RATE"), method="POST", group="uploads")
@require_http_methods(["POST"])
@storage_answers
def direct_upload(request):
    """Step 1 of a browser-to-S3 upload (S3 storage only): a presigned POST."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    try:
        start = uploads.direct_upload_start(owner=request.user, filename=str(body.get("filename", "")),
                                             content_type=str(body.get("content_type", "")), size=int(body.get("size", 0)))
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: {"size": 1e400}
        return JsonResponse({"error": str(exc) if isinstance(exc, uploads.DirectUploadError) else "Bad request."}, status=400)
    return JsonResponse(start)


@login_required
@ratelimit(key="user", rate=rate("UPLOAD_RATE"), method="POST", group="upload-confirms")
@require_http_methods(["POST"])
@storage_answers
def direct_upload_confirm(request):
    """Step 2: the file is in the bucket; check it and create the photo."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    try:
        visibility = Photo.Visibility.PUBLIC if body.get("public") else Photo.Visibility.PRIVATE
        photo = uploads.direct_upload_confirm(owner=request.user, token=str(body.get("token", "")), visibility=visibility)
    except uploads.DirectUploadError as exc:  # 503: storage failed, the same confirmation can be tried again
        return JsonResponse({"accepted": [], "rejected": [{"error": str(exc)}]},
                            status=503 if isinstance(exc, uploads.DirectUploadRetry) else 400)
    except ValueError:
        return JsonResponse({"error": "Bad request."}, status=400)
    return JsonResponse({"accepted": [photo_json(photo)], "rejected": []}, status=201)


@login_required
@require_http_methods(["POST"])
@storage_answers
def direct_upload_parts(request):
    """A video's multipart upload: the parts that arrived, and URLs for those asked for."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    numbers = body.get("parts", [])
    if not isinstance(numbers, list):
        return JsonResponse({"error": "Bad request."}, status=400)
    try:
        return JsonResponse(uploads.video_upload_parts(owner=request.user, token=str(body.get("token", "")),
                                                       numbers=numbers))
    except uploads.DirectUploadError as exc:
        return JsonResponse({"error": str(exc)}, status=400)


@login_required
@require_http_methods(["POST"])
@storage_answers
def direct_upload_abort(request):
    """A video's multipart upload, cancelled by its owner: its parts are dropped."""
    body, refusal = _direct_body(request)
    if refusal:
        return refusal
    try:
        uploads.video_upload_abort(owner=request.user, token=str(body.get("token", "")))
    except uploads.DirectUploadError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"aborted": True})


def _direct_body(request) -> tuple[dict, JsonResponse | None]:
    """The JSON body of a direct-upload call, or the response refusing it."""
    if not media_storage().direct_uploads:
        return {}, JsonResponse({"error": "Direct uploads need S3 storage."}, status=404)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}, JsonResponse({"error": "Bad request."}, status=400)
    if not isinstance(body, dict):
        return {}, JsonResponse({"error": "Bad request."}, status=400)
    return body, None
