"""The public gallery: search, and one public photo with its report form."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from ..forms import FlagForm
from ..models import Photo
from ..selectors import search
from ..selectors.labels import with_visible_labels
from .common import start_seconds
from ..selectors.titles import with_text_lines
from ..services.moderation import photo_flag
from .common import rate


GALLERY_PAGE = 24


@require_GET
def gallery(request):
    """Public photos, searchable by label (AND / NOT, parents match) and by text found in
    them, newest first or most relevant first, with the top labels of the results."""
    query = request.GET.get("q", "")[:200]
    sort = request.GET.get("sort", "newest")
    sort = sort if sort in search.SORTS else "newest"
    try:
        number = min(10_000, max(1, int(request.GET.get("page", "1"))))
    except ValueError:
        number = 1
    photos = with_text_lines(with_visible_labels(search.public_photos(query, sort)))
    page = search.page_of(photos, number, GALLERY_PAGE)
    facets, sampled = search.label_facets(query)
    in_query = {t.lower() for t in search.search_terms(query)[0]}
    facets = [(name, n) for name, n in facets if name.lower() not in in_query]  # a refinement, not a repeat
    return render(request, "photos/gallery.html", {
        "page": page, "query": query, "sort": sort, "facets": facets, "sampled": sampled,
        "facet_sample": search.FACET_SAMPLE, "relevance_window": search.RELEVANCE_WINDOW,
    })


@ratelimit(key="user_or_ip", rate=rate("REPORT_RATE"), method="POST")
@require_http_methods(["GET", "POST"])
def gallery_photo(request, uid):
    """One public photo with its labels, and a form to flag it (signed-in users)."""
    photo = get_object_or_404(with_text_lines(with_visible_labels(Photo.objects.public())), uid=uid)
    form = FlagForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        if form.is_valid():
            counted = photo_flag(photo_id=photo.pk, reporter=request.user, reason=form.cleaned_data["reason"],
                                 note=form.cleaned_data["note"])
            messages.success(request, ("Thank you: moderators will look at this photo." if counted
                                        else "You already reported this photo; moderators will look at it.")
                             + " You can follow it under My reports.")
            return redirect("gallery_photo", uid=uid)
    reported = (request.user.is_authenticated
                and photo.flags.filter(reporter=request.user).order_by("-created_at").first())
    return render(request, "photos/gallery_photo.html", {"photo": photo, "form": form, "reported": reported,
                                                         "start_at": start_seconds(request.GET.get("t"), photo)})
