"""Reads."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from .models import Label, Photo

# Flagged, escalated and removed photos never appear on public pages.
PUBLIC_MODERATION_STATES = (Photo.Moderation.NONE, Photo.Moderation.CLEARED)


THRESHOLDS_KEY = "moderation-thresholds"
THRESHOLDS_SECONDS = 10


def thresholds() -> dict:
    """Display and flag thresholds (0-100) and per-category flag thresholds, applied
    when showing and flagging, never when storing. Superusers edit them in the admin
    (ModerationSettings); without that row the settings' defaults apply.

    Read once and cached (a search asks for them in every condition it builds): a save
    of the row clears the cache at once (photos.apps); another process without a shared
    cache (REDIS_CACHE_URL) sees a change within THRESHOLDS_SECONDS."""
    from django.core.cache import cache

    cached = cache.get(THRESHOLDS_KEY)
    if cached is None:
        cached = _read_thresholds()
        cache.set(THRESHOLDS_KEY, cached, THRESHOLDS_SECONDS)
    return cached


def forget_thresholds(**kwargs) -> None:
    """Signal receiver: the thresholds row changed."""
    from django.core.cache import cache

    cache.delete(THRESHOLDS_KEY)


def _read_thresholds() -> dict:
    from .models import ModerationSettings

    defaults = {"display": settings.LABEL_DISPLAY_THRESHOLD, "flag": settings.MODERATION_FLAG_THRESHOLD, "categories": {}}
    row = ModerationSettings.objects.order_by("pk").first()
    if row is None:
        return defaults
    # The admin validates; a row written around it (SQL, an old version) must still not
    # break every page: out-of-range numbers and malformed categories fall back.
    def limit(value, default):
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100 else default

    raw = row.category_thresholds if isinstance(row.category_thresholds, dict) else {}
    return {
        "display": limit(row.display_threshold, defaults["display"]),
        "flag": limit(row.flag_threshold, defaults["flag"]),
        "categories": {str(k): float(v) for k, v in raw.items() if limit(v, None) is not None},
    }


def visible_labels_q(prefix: str = "") -> Q:
    """Labels a site user sees: approved ones, and machine labels not rejected and at or
    above the display threshold."""
    display = thresholds()["display"]
    return Q(**{f"{prefix}review_state": Label.Review.APPROVED}) | (
        Q(**{f"{prefix}review_state": Label.Review.PENDING}) & Q(**{f"{prefix}confidence__gte": display})
    )


def pending_machine_labels_q(prefix: str = "") -> Q:
    """Machine labels no editor has decided yet: the review queue's rows, and the photos
    the one-photo review steps through."""
    return Q(**{f"{prefix}review_state": Label.Review.PENDING, f"{prefix}source": Label.Source.MACHINE})


def photos_for_owner(*, owner, trashed: bool | None = False) -> QuerySet[Photo]:
    """The owner's photos, newest first (removed ones too, so the owner sees what
    happened), with their visible labels prefetched (two queries). ``trashed``: only
    those out of the trash (False), only those in it (True), or both (None)."""
    photos = Photo.objects.filter(owner=owner)
    if trashed is not None:
        photos = photos.filter(trashed_at__isnull=not trashed)
    return (
        photos
        .prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.filter(visible_labels_q()).order_by("-confidence", "name"),
                to_attr="visible_labels",
            )
        )
    )


def photo_is_public(photo: Photo) -> bool:
    return (
        photo.visibility == Photo.Visibility.PUBLIC
        and photo.trashed_at is None
        and photo.status == Photo.Status.LABELED
        and photo.moderation_state in PUBLIC_MODERATION_STATES
    )


def photo_can_view(*, user, photo: Photo) -> bool:
    """Owner and staff always; anyone else only for public, labelled photos that are
    neither flagged nor removed."""
    owner = photo.owner_id is not None and photo.owner_id == user.pk
    staff = user.is_authenticated and user.is_staff and user.has_perm("photos.view_photo")
    if user.is_authenticated and (staff or owner):
        # A removed photo is served to no one but staff, its owner included, until a
        # moderator restores it (an appeal changes nothing until then).
        return not photo.withheld or staff
    return photo_is_public(photo)


def photo_gets_original(*, user, photo: Photo) -> bool:
    """The uploaded file, with whatever EXIF/GPS it carries, is its owner's (and
    superusers'); everyone else sees the stripped display rendition."""
    return user.is_authenticated and (user.is_superuser or (photo.owner_id is not None and photo.owner_id == user.pk))


TAXONOMY_SECONDS = 60


def _taxonomy() -> dict[str, list[str]]:
    """name -> parents for every machine label name (cached for a minute)."""
    from django.core.cache import cache

    from .models import LabelTaxonomy

    taxonomy = cache.get("label-taxonomy")
    if taxonomy is None:
        taxonomy = {name: list(parents or []) for name, parents in LabelTaxonomy.objects.values_list("name", "parents")}
        cache.set("label-taxonomy", taxonomy, TAXONOMY_SECONDS)
    return taxonomy


def label_parents() -> list[str]:
    """Every name that is some label's parent (Animal, Vehicle...), sorted."""
    return sorted({parent for parents in _taxonomy().values() for parent in parents})


def known_label_names() -> set[str]:
    """Every label name and parent the taxonomy knows, as spelled."""
    taxonomy = _taxonomy()
    return set(taxonomy) | {parent for parents in taxonomy.values() for parent in parents}


def label_names_under(term: str) -> list[str]:
    """``term`` (as typed, Title Cased) and every label name that has it as a parent, from
    the small taxonomy table: "Animal" -> Animal, Dog, Cat, Bird..."""
    taxonomy = _taxonomy()
    variants = {term, term.title(), term.capitalize()}
    lowered = {v.lower() for v in variants}
    children = {name for name, parents in taxonomy.items() if any(p.lower() in lowered for p in parents)}
    return sorted(variants | children)


def has_label(term: str, *, visible_only: bool = False):
    """An EXISTS condition on photos: a label called ``term`` or under it (Animal
    includes Dog) that is not rejected. An indexed probe per photo. ``visible_only``
    (public pages) counts only the labels those pages show, those at or above the
    display threshold, so no photo matches for a reason nobody can see."""
    from django.db.models import Exists, OuterRef

    shown = visible_labels_q() if visible_only else Q(review_state__in=[Label.Review.PENDING, Label.Review.APPROVED])
    return Exists(Label.objects.filter(shown, photo=OuterRef("pk"), name__in=label_names_under(term)))


def parse_label_query(text: str) -> tuple[list[str], list[str]] | None:
    """``Dog AND Grass NOT Cat`` or ``+Dog +Grass -Cat`` -> (["Dog", "Grass"], ["Cat"]).
    Quotes keep multi-word names together. None when the text uses no operator."""
    import shlex

    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    if not any(t in ("AND", "NOT") or t[:1] in "+-" for t in tokens if t):
        return None
    include, exclude, negate = [], [], False
    for token in tokens:
        if token == "AND":
            continue
        if token == "NOT":
            negate = True
            continue
        if token.startswith("-"):
            negate, token = True, token[1:]
        elif token.startswith("+"):
            token = token[1:]
        if token:
            (exclude if negate else include).append(token)
        negate = False
    return include, exclude


MAX_SEARCH_TERMS = 8
MAX_PHRASE_WORDS = 4


def join_label_phrases(tokens: list[str]) -> list[str]:
    """Adjacent words that together name a known label become one token, longest first,
    so multi-word labels need no quotes: ``Furniture NOT Dining Table`` ->
    ["Furniture", "NOT", "Dining Table"]; a +/- prefix stays on the phrase."""
    known = {n.lower() for n in known_label_names()}

    def plain(token: str) -> bool:
        return token not in ("AND", "NOT") and token[:1] not in ("+", "-")

    joined, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        prefix = token[:1] if token[:1] in ("+", "-") else ""
        if token in ("AND", "NOT"):
            joined.append(token)
            i += 1
            continue
        end = i + 1
        while end < len(tokens) and end - i < MAX_PHRASE_WORDS and plain(tokens[end]):
            end += 1
        for j in range(end, i + 1, -1):
            phrase = " ".join([token[len(prefix):], *tokens[i + 1 : j]])
            if phrase.lower() in known:
                joined.append(prefix + phrase)
                i = j
                break
        else:
            joined.append(token)
            i += 1
    return joined


def has_text(term: str):
    """An EXISTS condition on photos: ``term`` was found in the photo, at or above the
    display threshold (what the photo's page shows): one word, whatever its case, or a
    phrase inside a line of text."""
    from django.db.models import Exists, OuterRef

    from .models import DetectedText

    shown = Q(photo=OuterRef("pk"), confidence__gte=thresholds()["display"])
    words = term.split()
    if len(words) > 1:
        # A phrase: inside one line of text, or every word of it somewhere in the photo
        # (OCR may read a sign's words as separate lines).
        every_word = Q()
        for word in words[:MAX_PHRASE_WORDS]:
            every_word &= Exists(DetectedText.objects.filter(shown, type=DetectedText.Type.WORD, text__iexact=word))
        return Exists(DetectedText.objects.filter(shown, type=DetectedText.Type.LINE, text__icontains=" ".join(words))) | every_word
    return Exists(DetectedText.objects.filter(shown, type=DetectedText.Type.WORD, text__iexact=term.strip()))


def matches(term: str):
    """A search term matches a photo through a visible label (or a kind of it) or text
    found in it: never for a reason its page does not show.

    An OR of two EXISTS keeps PostgreSQL from its semi-join (a label search went from 12
    to 100 ms over 100,000 photos), so each side is added only when it can match: a term
    no photo shows as text (one indexed probe) is a label search as before, and a term
    that names no label is a text search."""
    from .models import DetectedText

    names = {n.lower() for n in known_label_names()}
    under = label_names_under(term)
    # The taxonomy holds machine labels; an editor's label is only in the label table.
    is_label = bool({v.lower() for v in under} & names) or Label.objects.filter(name__in=under).exists()
    shown = Q(confidence__gte=thresholds()["display"])
    words = term.split()
    is_text = all(DetectedText.objects.filter(shown, type=DetectedText.Type.WORD, text__iexact=w).exists()
                  for w in words[:MAX_PHRASE_WORDS]) if words else False
    if is_label and is_text:
        return has_label(term, visible_only=True) | has_text(term)
    return has_text(term) if is_text else has_label(term, visible_only=True)


def search_terms(search: str) -> tuple[list[str], list[str]]:
    """The words and phrases a search requires and excludes (capped)."""
    import shlex

    search = (search or "").replace("\x00", "").strip()  # NUL cannot reach PostgreSQL
    if not search:
        return [], []
    try:
        tokens = shlex.split(search)
    except ValueError:
        tokens = search.split()
    tokens = join_label_phrases(tokens[: MAX_SEARCH_TERMS * MAX_PHRASE_WORDS * 2])
    parsed = parse_label_query(shlex.join(tokens))
    include, exclude = parsed if parsed is not None else (tokens, [])
    return include[:MAX_SEARCH_TERMS], exclude[:MAX_SEARCH_TERMS]


SORTS = ("newest", "relevance")
RELEVANCE_WINDOW = 2000


def public_photos(search: str = "", sort: str = "newest") -> QuerySet[Photo]:
    """Public, labelled photos no one has to moderate, optionally narrowed by a search:
    words are labels or text a photo must show; AND / NOT or +/- work as in the admin; a
    parent matches its kinds. Newest first, or by relevance: the confidences of what
    matched, summed over the terms (then newest)."""
    photos = Photo.objects.filter(
        visibility=Photo.Visibility.PUBLIC, status=Photo.Status.LABELED, moderation_state__in=PUBLIC_MODERATION_STATES,
        trashed_at__isnull=True,
    )
    include, exclude = search_terms(search)
    for term in include:
        photos = photos.filter(matches(term))
    for term in exclude:
        photos = photos.exclude(matches(term))
    photos = photos.order_by("-created_at", "-id")
    if sort == "relevance" and include:
        # Ranked among the newest RELEVANCE_WINDOW matches: a score per photo is a
        # subquery per term, bounded work whatever the library's size.
        window = list(photos.values_list("pk", flat=True)[:RELEVANCE_WINDOW])
        return (Photo.objects.filter(pk__in=window).annotate(relevance=_relevance(include))
                .order_by("-relevance", "-created_at", "-id"))
    return photos


def _relevance(terms: list[str]):
    """Per photo: for each term, the confidence of its best visible label (or kind of
    it), else of the text that matched; summed."""
    from django.db.models import FloatField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce, Greatest

    from .models import DetectedText

    total = Value(0.0, output_field=FloatField())
    for term in terms:
        label = Subquery(Label.objects.filter(visible_labels_q(), photo=OuterRef("pk"), name__in=label_names_under(term))
                         .order_by("-confidence").values("confidence")[:1], output_field=FloatField())
        text = Subquery(DetectedText.objects.filter(photo=OuterRef("pk"), type=DetectedText.Type.WORD,
                                                    confidence__gte=thresholds()["display"], text__iexact=term.strip())
                        .order_by("-confidence").values("confidence")[:1], output_field=FloatField())
        total = total + Greatest(Coalesce(label, 0.0), Coalesce(text, 0.0))
    return total


FACET_SAMPLE = 2000
FACETS = 10
FACET_SECONDS = 60


def label_facets(search: str) -> tuple[list[tuple[str, int]], bool]:
    """The most frequent visible labels among the newest FACET_SAMPLE photos a public
    search finds, with their counts, and whether that sample was full (more results
    exist than were counted). Cached a minute per search."""
    from django.core.cache import cache
    from django.db.models import Count

    key = "facets:" + hashlib.sha256(" ".join(search.split()).lower().encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    ids = list(public_photos(search).values_list("pk", flat=True)[:FACET_SAMPLE])
    counts = list(Label.objects.filter(visible_labels_q(), photo_id__in=ids).values("name")
                  .annotate(n=Count("photo_id", distinct=True)).order_by("-n", "name").values_list("name", "n")[:FACETS])
    result = (counts, len(ids) == FACET_SAMPLE)
    cache.set(key, result, FACET_SECONDS)
    return result


SUGGESTIONS = 10


def label_suggestions(prefix: str) -> list[str]:
    """Label names (and parents) from the taxonomy that start with ``prefix``, or have a
    word that does, shortest first: the search box's suggestions as one types."""
    prefix = prefix.strip().lower()
    if not prefix:
        return []
    names = known_label_names()
    starts = [n for n in names if n.lower().startswith(prefix)]
    inner = [n for n in names if n not in starts and any(w.startswith(prefix) for w in n.lower().split()[1:])]
    return (sorted(starts, key=lambda n: (len(n), n)) + sorted(inner, key=lambda n: (len(n), n)))[:SUGGESTIONS]


def with_text_lines(photos: QuerySet[Photo]) -> QuerySet[Photo]:
    """The lines of text found in each photo that pages show (at or above the display
    threshold), as ``lines``: one more query per page."""
    from .models import DetectedText

    return photos.prefetch_related(Prefetch(
        "texts", queryset=DetectedText.objects.filter(type=DetectedText.Type.LINE, confidence__gte=thresholds()["display"])
        .order_by(*reading_order_by()), to_attr="lines"))


def reading_order_by() -> tuple:
    """Top to bottom, then left to right: the database's part of reading order
    (``reading_order`` then puts the words of one line left to right)."""
    from django.db.models import FloatField
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

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


def with_visible_labels(photos: QuerySet[Photo]) -> QuerySet[Photo]:
    return photos.prefetch_related(
        Prefetch("labels", queryset=Label.objects.filter(visible_labels_q()).order_by("-confidence", "name"),
                 to_attr="visible_labels")
    )


class Page(list):
    """A page without a total count: counting every match of a label search over
    100,000 photos costs more than showing the page."""

    def __init__(self, items, number: int, has_next: bool):
        super().__init__(items)
        self.number = number
        self._has_next = has_next

    def has_next(self) -> bool:
        return self._has_next

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


def page_of(queryset, number: int, size: int) -> Page:
    rows = list(queryset[(number - 1) * size : number * size + 1])
    return Page(rows[:size], number, len(rows) > size)


MODERATION_DECISIONS = ("clear", "remove", "escalate")


def owner_photo(*, owner, uid) -> Photo | None:
    """One of the owner's photos for its page: visible labels (with their boxes), the
    lines of text found in it, the latest moderation decision (the removal reason and
    the moderator's note) and its appeal, in four queries."""
    from .models import AuditEvent, DetectedText

    photo = (
        photos_for_owner(owner=owner, trashed=None)
        .prefetch_related(Prefetch("texts", queryset=DetectedText.objects.filter(type=DetectedText.Type.LINE)
                                   .order_by(*reading_order_by()), to_attr="lines"))
        .filter(uid=uid)
        .first()
    )
    if photo is not None:
        from .moderation import removal_reason

        events = list(AuditEvent.objects.filter(photo=photo, action__in=(*MODERATION_DECISIONS, AuditEvent.Action.APPEAL))
                      .order_by("-at", "-id"))
        photo.decision = next((e for e in events if e.action in MODERATION_DECISIONS), None)
        photo.removal_reason = removal_reason(photo.decision)
        removal = next((e for e in events if e.action == AuditEvent.Action.REMOVE), None)
        photo.appeal = next((e for e in events if e.action == AuditEvent.Action.APPEAL
                             and (removal is None or (e.at, e.id) > (removal.at, removal.id))), None)
        # The removal was the decision on an appeal: final.
        photo.appeal_decided = removal is not None and bool((removal.after or {}).get("on_appeal"))
    return photo


def reports_by(*, reporter) -> QuerySet:
    """The reports a user made, newest first, with their photos and their visible labels
    (for the photos' public titles; two queries)."""
    from .models import Flag

    return (Flag.objects.filter(reporter=reporter).select_related("photo").order_by("-created_at", "-id")
            .prefetch_related(Prefetch("photo__labels", queryset=Label.objects.filter(visible_labels_q())
                                       .order_by("-confidence", "name"), to_attr="visible_labels")))


PAGE_SIZE = 48
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


def owner_page(*, owner, cursor: str = "", trashed: bool = False, size: int = PAGE_SIZE) -> tuple[list[Photo], str]:
    """A page of the owner's photos after ``cursor`` (keyset on created_at, id: the same
    cost on page 1 and page 500), and the cursor of the next page ("" on the last).
    A cursor that does not parse starts from the newest."""
    photos = photos_for_owner(owner=owner, trashed=trashed).order_by("-created_at", "-id")
    try:
        stamp, _, ident = cursor.partition("_")
        after = EPOCH + timedelta(microseconds=int(stamp)), int(ident)
    except (ValueError, OverflowError):
        after = None
    if after is not None:
        # The OR is the exact keyset; created_at <= t makes it an index range scan too.
        photos = photos.filter(Q(created_at__lt=after[0]) | Q(created_at=after[0], id__lt=after[1]), created_at__lte=after[0])
    page = list(photos[: size + 1])
    if len(page) <= size:
        return page, ""
    last = page[size - 1]
    return page[:size], photo_cursor(last)


def photo_cursor(photo: Photo) -> str:
    """Where a page ends: created_at in whole microseconds (exact, no float) and the id."""
    return f"{(photo.created_at - EPOCH) // timedelta(microseconds=1)}_{photo.id}"


def specific_first(labels) -> list:
    """Labels (each with ``name`` and ``parents``) in their order, except that a label
    another of them names as a parent comes after all that are not parents: "Cat 91 %,
    Animal 91 %" rather than "Animal, Cat" when confidences tie or parents sum higher."""
    specific, general = split_parents(labels)
    return specific + general


def split_parents(labels) -> tuple[list, list]:
    """(labels no other of them names as a parent, those that one does), in order."""
    labels = list(labels or [])
    parents = {p for label in labels for p in (label.parents or [])}
    return [lb for lb in labels if lb.name not in parents], [lb for lb in labels if lb.name in parents]


UNTITLED_LABELS = {"Text"}  # says there is text, not what the photo is: its first line says more


def public_title(photo: Photo, labels=None) -> str:
    """A photo's name on public pages and in the API: its first labels (the specific
    ones), never the uploaded file's name. ``labels`` defaults to the prefetched
    visible labels."""
    chosen = [lb for lb in (labels if labels is not None else getattr(photo, "visible_labels", None) or [])
              if lb.name not in UNTITLED_LABELS]
    leaves, _ = split_parents(chosen)  # "Cat", not "Cat, Animal and Mammal"
    names = [lb.name for lb in (leaves or chosen)][:3]
    if not names:
        lines = reading_order(getattr(photo, "lines", None))
        return f"“{lines[0].text[:60]}”" if lines else "Untitled photo"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
