"""Template filters for the site's photo pages: the selectors' own functions."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse

from photos import video
from photos.renditions import photo_timeline_index
from photos.selectors.timeline import renamed
from photos.selectors import labels, search, titles

register = template.Library()

# What a photo is called where people other than its owner see it: its labels, never the
# file's name (which may carry a person's name, a place, a document).
register.filter("public_title", titles.public_title)
# Labels with the specific ones before their parents: Cat, then Animal.
register.filter("specific_first", labels.specific_first)
# Lines of text found in a photo, as a person reads them.
register.filter("reading_order", titles.reading_order)
# "May 2024": the month heading a photo falls under when a page is sorted by ``sort``.
register.filter("month_heading", titles.month_heading)
# The search a facet chip links to: the current one narrowed by that label.
register.filter("refined", search.refined)


@register.filter
def seen_at(photo, query: str) -> tuple[str, int] | None:
    """On a search result: when in a video what was searched for is first seen, as (what,
    ms), from its timeline: a label (by its name as an editor left it, a parent or an
    alias) or a word of text found. None for a photo, a video not analysed yet, or no
    search. Costs no query unless an editor renamed, merged or added a label."""
    if not query or not getattr(photo, "is_video", False):
        return None
    terms = {t.lower() for t in search.search_terms(query)[0]}
    shown = {lb.name for lb in getattr(photo, "visible_labels", [])}  # not what an editor rejected
    index = photo_timeline_index(photo)
    names = renamed(photo) if shown - {name for _, name, _ in index["labels"]} else {}
    found: list[tuple[int, str]] = []
    for start, machine, more in index["labels"]:
        name = names.get(machine, machine)
        if name in shown and {n.lower() for n in (name, *more)} & terms:
            found.append((start, name))
    for at, text in index["text"]:
        if text.lower() in terms:
            found.append((at, f"“{text}”"))
    if not found:
        return None
    ms, what = min(found)
    return what, ms


@register.filter
def duration(ms) -> str:
    """A video's length: 3000 -> "0:03", 3_723_000 -> "1:02:03"."""
    return video.duration_text(int(ms)) if ms is not None else ""


@register.filter
def utc_offset(minutes: int) -> str:
    """120 -> "UTC+02:00", -330 -> "UTC-05:30"."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(int(minutes)), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


@register.simple_tag
def source_code_url() -> str:
    """Where the footer offers the running copy's source (AGPL-3.0 section 13)."""
    return settings.SOURCE_CODE_URL or reverse("source")
