"""One photo: its file (served or redirected, to those allowed), the owner's page,
visibility, appeal, and the reports one made."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .. import video
from ..models import Photo
from ..pipelines import media_storage
from ..renditions import RenditionError, photo_display_rendition, photo_stream, photo_timeline
from ..selectors.labels import specific_first
from ..selectors.library import owner_photo, photo_gets_original, reports_by
from ..services.moderation import ModerationError, photo_appeal as appeal, report_outcome
from ..selectors.timeline import label_segments, player_boxes, renamed, text_times
from ..selectors.titles import machine_title
from ..services.photos import CAPTION_MAX, TITLE_MAX, DescribeError, photo_describe, photo_set_visibility
from .common import content_disposition, start_seconds


VIDEO_FORMAT_NAMES = {"h264": "H.264 video", "hevc": "HEVC video", "vp8": "VP8 video", "vp9": "VP9 video",
                      "av1": "AV1 video"}


@require_GET
def photo_file(request, uid, kind: str):
    """The image or its thumbnail, only for those allowed to see the photo. The original
    goes to its owner (and superusers) only; everyone else, staff included, gets the
    EXIF-free display rendition. Local files are streamed; S3 objects are redirected to a
    short-lived presigned URL."""
    photo = Photo.objects.visible_to(request.user).filter(uid=uid).first()
    if photo is None:
        raise Http404("No such photo.")
    # "display": the rendition whoever asks (the owner's photo page shows it too).
    original = kind == "image" and photo_gets_original(user=request.user, photo=photo)
    download = original and request.GET.get("download") == "1"
    if kind == "thumbnail":
        name = photo.thumbnail.name if photo.thumbnail else ""
    elif kind == "stream":  # a video as every browser plays it, metadata-free: for all who may see it
        name = photo_stream(photo) if photo.is_video else ""
    elif original:
        name = photo.image.name
    elif photo.is_video:
        # A video's picture for everyone else is its poster, made by the worker (never
        # decoded in a request); 404 until it is.
        name = photo.thumbnail.name if photo.thumbnail else ""
    else:
        try:
            name = photo_display_rendition(photo=photo)
        except (FileNotFoundError, OSError, RenditionError):
            raise Http404("Missing from storage or unreadable.") from None
    if not name:
        raise Http404("Not made yet.")
    disposition = content_disposition(photo.original_filename or f"{photo.uid}", attachment=download)
    content_type = ((photo.content_type or "application/octet-stream") if original
                    else "video/mp4" if kind == "stream" else "image/jpeg")
    try:
        return media_storage().response(name, content_type=content_type, disposition=disposition,
                                        range_header=request.headers.get("Range", ""),
                                        # A video the player keeps asking ranges of: the original or the stream.
                                        expires=playback_seconds(photo) if photo.is_video and (kind == "stream" or original)
                                        else None)
    except FileNotFoundError:
        raise Http404("Missing from storage.") from None


@login_required
@require_GET
def photo_detail(request, uid):
    """The owner's page for one photo: large view with label boxes, text found, facts,
    moderation outcome, download, visibility and delete."""
    photo = owner_photo(owner=request.user, uid=uid)
    if photo is None:
        raise Http404("No such photo.")
    # A video's boxes belong to moments of it, not to its poster: the player draws each
    # sampled frame's boxes while that moment plays, and the labels list when they are
    # seen (from the timeline), each time a button that seeks there.
    boxes = [] if photo.is_video else [
        {"label": label.name, "style": box_style(instance["box"])}
        for label in photo.visible_labels for instance in label.instances if isinstance(instance.get("box"), dict)
    ]
    timeline = photo_timeline(photo) if photo.is_video else None
    names = renamed(photo) if timeline else {}
    seen_at = label_segments(timeline, names)
    return render(request, "photos/photo_detail.html", {
        "photo": photo, "boxes": boxes, "boxed_labels": {b["label"] for b in boxes},
        "format": VIDEO_FORMAT_NAMES.get(photo.video_codec, "") if photo.is_video
        else (photo.content_type or "").removeprefix("image/").upper(),
        "machine_title": machine_title(photo),
        "title_max": TITLE_MAX, "caption_max": CAPTION_MAX,
        "video_labels": [(label, seen_at.get(label.name, [])) for label in specific_first(photo.visible_labels)]
        if photo.is_video else [],
        # Chromium and Firefox play H.264, VP8/9 and AV1 as stored; HEVC (an iPhone's) only
        # through the stream rendition, which comes first then.
        "plays_as_stored": photo.video_codec in video.BROWSER_PLAYABLE,
        # An H.264 MOV is an MP4 to a browser: typed video/quicktime, Chromium skips it.
        "source_type": "video/mp4" if photo.content_type == "video/quicktime" else photo.content_type,
        # ?t=<ms> (a search result's "Cat at 0:12"): the player starts there (a media fragment).
        "start_at": start_seconds(request.GET.get("t"), photo),
        "has_stream": bool(photo.is_video and photo_stream(photo)),
        "text_times": text_times(timeline),
        "player_boxes": player_boxes(timeline, {label.name for label in photo.visible_labels}, names),
    })





PLAYBACK_MAX_SECONDS = 12 * 3600


def playback_seconds(photo: Photo) -> int:
    """How long a presigned URL to a video lasts: a player asks for byte ranges as long as
    it plays and whenever it is sought, so the URL outlives three viewings plus ten
    minutes of pauses (at least AWS_QUERYSTRING_EXPIRE, at most 12 hours; a URL signed
    with temporary credentials ends with them anyway)."""
    default = int(getattr(settings, "AWS_QUERYSTRING_EXPIRE", 300) or 300)
    return min(PLAYBACK_MAX_SECONDS, max(default, 3 * (photo.duration_ms or 0) // 1000 + 600))


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
def photo_visibility(request, uid):
    photo = Photo.objects.filter(uid=uid).only("id").first()
    visibility = request.POST.get("visibility", "")
    if visibility not in Photo.Visibility.values:
        messages.error(request, "Choose public or private.")
        return redirect("photos:detail", uid=uid)
    changed = photo and photo_set_visibility(photo_id=photo.id, actor=request.user, visibility=visibility)
    if not changed:
        raise Http404("No such photo.")
    if visibility == Photo.Visibility.PUBLIC and not changed.is_public:
        messages.success(request, "Public: it shows in the gallery once it is labelled and while no moderator holds it back.")
    else:
        messages.success(request, "Public: it shows in the gallery." if visibility == Photo.Visibility.PUBLIC
                         else "Private: only you see it.")
    return redirect("photos:detail", uid=uid)


@login_required
@require_http_methods(["POST"])
def photo_describe_view(request, uid):
    """The owner gives the photo a title and a caption (empty: named by its labels)."""
    photo = Photo.objects.filter(uid=uid, owner=request.user).only("id").first()
    if photo is None:
        raise Http404("No such photo.")
    try:
        described = photo_describe(photo_id=photo.id, actor=request.user, title=request.POST.get("title", ""),
                                   caption=request.POST.get("caption", ""))
    except DescribeError as exc:
        messages.error(request, f"{exc} Nothing was changed.")
    else:
        if described is None:  # in the trash
            messages.error(request, "Restore the photo from the trash before you change its title or caption.")
        else:
            messages.success(request, "Saved the title and caption." if described.title or described.caption
                             else "Title and caption cleared: the photo is named by its labels again.")
    return redirect("photos:detail", uid=uid)


@login_required
@require_http_methods(["POST"])
def photo_appeal(request, uid):
    """The owner asks moderators to look again at a removed photo."""
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
    reports = list(reports_by(reporter=request.user)[:200])
    for report in reports:
        report.outcome = report_outcome(report)
        report.public = report.photo.is_public
    return render(request, "photos/my_reports.html", {"reports": reports})
