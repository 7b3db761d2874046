"""How photos read on pages: their text in reading order and their public titles."""

from __future__ import annotations

from django.db.models import FloatField, Prefetch, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from ..models import DetectedText, Photo
from .labels import split_parents, thresholds


def with_text_lines(photos: QuerySet[Photo]) -> QuerySet[Photo]:
    """The lines of text found in each photo that pages show (at or above the display
    threshold), as ``lines``: one more query per page."""
    return photos.prefetch_related(Prefetch(
        "texts", queryset=DetectedText.objects.filter(type=DetectedText.Type.LINE, confidence__gte=thresholds()["display"])
        .order_by(*reading_order_by()), to_attr="lines"))


def reading_order_by() -> tuple:
    """Top to bottom, then left to right: the database's part of reading order
    (``reading_order`` then puts the words of one line left to right)."""
    return (Cast(KT("box__top"), FloatField()), Cast(KT("box__left"), FloatField()), "id")


def reading_order(lines) -> list:
    """Lines of text as a person reads them: rows top to bottom, where a box starting
    less than half the row's height below the row's top is on that row (OCR puts the
    words of one sign line a pixel or two apart), each row left to right."""
    def box(t):
        raw = t.box if isinstance(t.box, dict) else {}
        return float(raw.get("top", 0) or 0), float(raw.get("left", 0) or 0), float(raw.get("height", 0) or 0)

    rows: list[list] = []
    for t in sorted(lines or [], key=lambda t: box(t)[:2]):
        top, _, height = box(t)
        if rows and top - rows[-1][0] < max(rows[-1][1] / 2, 0.005):
            rows[-1][2].append(t)
        else:
            rows.append([top, height, [t]])
    return [t for _, _, row in rows for t in sorted(row, key=lambda t: box(t)[1])]


UNTITLED_LABELS = {"Text"}  # says there is text, not what the photo is: its first line says more
# Parts of a person: a portrait is "Person and Tie", not "Face and Tie" (Face sits under
# Person, so without this rule the part would hide the whole).
PART_LABELS = {"Face", "Head"}


def public_title(photo: Photo, labels=None) -> str:
    """A photo's name on public pages and in the API: the title its owner gave it, else
    its first labels (the specific ones), never the uploaded file's name. ``labels``
    defaults to the prefetched visible labels."""
    return photo.title or machine_title(photo, labels)


def machine_title(photo: Photo, labels=None) -> str:
    """The name its labels give a photo (or the first line of text found in it)."""
    titled = [lb for lb in (labels if labels is not None else getattr(photo, "visible_labels", None) or [])
              if lb.name not in UNTITLED_LABELS]
    chosen = [lb for lb in titled if lb.name not in PART_LABELS] or titled  # a lone Face still names it
    leaves, _ = split_parents(chosen)  # "Cat", not "Cat, Animal and Mammal"
    names = [lb.name for lb in (leaves or chosen)][:3]
    if not names:
        lines = reading_order(getattr(photo, "lines", None))
        return f"“{lines[0].text[:60]}”" if lines else ("Untitled video" if photo.is_video else "Untitled photo")
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def month_heading(photo: Photo, sort: str) -> str:
    """The month a photo is listed under: the month it was taken (on the camera's
    calendar) in the timeline, the month it was uploaded when sorted by upload; none
    for relevance, whose order is not by time."""
    if sort == "taken":
        when = photo.taken_local
    elif sort == "newest":
        when = photo.created_at
    else:
        return ""
    return f"{MONTHS[when.month - 1]} {when.year}" if when else ""


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
