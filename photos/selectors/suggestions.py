"""What the search box suggests as one types: only what the same person's search would
find, with how many photos it would find.

- Visitors (the gallery, the public API): labels that public photos show, from
  PublicLabelCount, a count over the whole gallery that the beat task count_public_labels
  renews every COUNT_SECONDS; where no beat runs (`make run` without Redis), the first
  request after twice that recounts. A count is at most that old: a label whose last
  public photo went private can be offered for that long, and then finds nothing.
- Owners (My photos, ``owner=me``): their own visible labels, the words found in their
  photos and the words of their titles and captions, counted live over their library
  out of the trash: three indexed queries a keystroke.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import Lower
from django.utils import timezone

from ..models import DescriptionWord, DetectedText, Label, Photo, PublicLabelCount
from .labels import thresholds, visible_labels_q

SUGGESTIONS = 10
COUNT_SECONDS = 600
_FRESH_KEY, _LOCK_KEY = "public-label-counts:fresh", "public-label-counts:lock"


def count_public_labels() -> int:
    """Recount, for every label, the public photos that show it (one GROUP BY over the
    gallery), and replace the counts in one transaction. Returns how many names."""
    now = timezone.now()
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":  # a scan of every label: parallel workers help here
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 2")
            counts = list(Label.objects.filter(visible_labels_q(), photo__in=Photo.objects.public().values("pk"))
                          .values("name").annotate(n=Count("id")).values_list("name", "n"))
            PublicLabelCount.objects.all().delete()
            PublicLabelCount.objects.bulk_create([PublicLabelCount(name=name, photos=n, counted_at=now)
                                                  for name, n in counts])
    except IntegrityError:  # another recount (the beat, another process) committed first: its counts stand
        return 0
    cache.set(_FRESH_KEY, True, 60)
    return len(counts)


def _ensure_counted() -> None:
    """Recount here when the beat has not for 2 x COUNT_SECONDS (one request at a time;
    checked once a minute per process)."""
    if cache.get(_FRESH_KEY):
        return
    latest = PublicLabelCount.objects.aggregate(latest=Max("counted_at"))["latest"]
    if (latest is None or (timezone.now() - latest).total_seconds() > 2 * COUNT_SECONDS) and cache.add(_LOCK_KEY, 1, 300):
        try:
            count_public_labels()
        finally:
            cache.delete(_LOCK_KEY)
    cache.set(_FRESH_KEY, True, 60)


def _ranked(counts: dict[str, int], prefix: str) -> list[tuple[str, int]]:
    """Names starting with the prefix first, then those with a later word that does;
    each group by how many photos, then alphabetically."""
    def key(item):
        name, n = item
        return (not name.lower().startswith(prefix), -n, name.lower())
    return sorted(counts.items(), key=key)[:SUGGESTIONS]


def _matching(field: str, prefix: str) -> Q:
    return Q(**{f"{field}__istartswith": prefix}) | Q(**{f"{field}__icontains": f" {prefix}"})


def public_suggestions(prefix: str) -> list[tuple[str, int]]:
    """(label, public photos showing it) for a visitor's prefix."""
    prefix = " ".join(prefix.split()).lower()
    if not prefix:
        return []
    _ensure_counted()
    rows = PublicLabelCount.objects.filter(_matching("name", prefix), photos__gt=0).values_list("name", "photos")
    return _ranked(dict(rows[:500]), prefix)


def owner_suggestions(*, owner, prefix: str) -> list[tuple[str, int]]:
    """(label or word, photos of the owner's it finds) for a prefix typed on My photos."""
    prefix = " ".join(prefix.split()).lower()
    if not prefix:
        return []
    photos = Photo.objects.filter(owner=owner, trashed_at__isnull=True).values("pk")
    counts: dict[str, int] = dict(
        Label.objects.filter(visible_labels_q(), _matching("name", prefix), photo__in=photos)
        .values("name").annotate(n=Count("id")).values_list("name", "n")[:500])
    if " " not in prefix:  # words: one at a time
        known = {name.lower() for name in counts}
        words = (DetectedText.objects.filter(type=DetectedText.Type.WORD, confidence__gte=thresholds()["display"],
                                             text__istartswith=prefix, photo__in=photos)
                 .annotate(word=Lower("text")).values("word").annotate(n=Count("photo", distinct=True))
                 .values_list("word", "n")[:500])
        described = (DescriptionWord.objects.filter(word__startswith=prefix, photo__in=photos)
                     .values("word").annotate(n=Count("photo")).values_list("word", "n")[:500])
        for word, n in [*words, *described]:
            if word not in known:
                counts[word] = max(counts.get(word, 0), n)
    return _ranked(counts, prefix)
