"""Pieces every page shares: JSON or HTML, a photo as JSON for live updates, the
download header, and rates read from settings."""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import floatformat
from django.urls import reverse
from urllib.parse import quote

from .. import video
from ..models import Photo
from ..selectors.labels import specific_first, visible_labels_q


def rate(setting: str):
    """django-ratelimit's rate as a callable, so it reads the setting on each request."""
    return lambda group, request: getattr(settings, setting)


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def photo_json(photo: Photo) -> dict:
    labels = getattr(photo, "visible_labels", None)
    if labels is None:
        labels = list(photo.labels.filter(visible_labels_q()))
    return {
        "id": str(photo.uid),
        "filename": photo.original_filename,
        "status": photo.status,
        "status_display": photo.get_status_display(),
        "status_reason": photo.status_reason,
        "moderation": photo.moderation_state,
        "visibility": photo.visibility,
        "pending": photo.is_pending,
        "kind": photo.kind,
        "duration": video.duration_text(photo.duration_ms) if photo.is_video and photo.duration_ms else "",
        # In the page's order (specific first) and with the page's rounding, so a live
        # update and a reload show the same thing.
        "labels": [{"name": lb.name, "confidence": round(lb.confidence, 1) if lb.confidence is not None else None,
                    "percent": floatformat(lb.confidence, 0) if lb.confidence is not None else None}
                   for lb in specific_first(labels)],
        # The owner's own photos, a removed one too (its owner still sees it).
        "thumbnail": reverse("photos:thumbnail", args=[photo.uid])
        if photo.thumbnail else None,
        "thumbnail_pending": not photo.thumbnail,
        "url": reverse("photos:detail", args=[photo.uid]),
        "delete_url": reverse("photos:delete", args=[photo.uid]),
    }


def content_disposition(filename: str, *, attachment: bool) -> str:
    """inline, or attachment with the original name (RFC 6266: an ASCII fallback and the
    UTF-8 name), never a header injection."""
    if not attachment:
        return "inline"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)[:150] or "photo"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename[:150], safe='')}"


def start_seconds(value, photo: Photo) -> str:
    """"12.5" from "12500" when it is a time inside the video; "" otherwise."""
    try:
        ms = int(value or "")
    except ValueError:
        return ""
    return f"{ms / 1000:g}" if photo.is_video and 0 < ms < (photo.duration_ms or 0) else ""
