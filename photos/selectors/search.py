"""Searching public photos: the query grammar (words, phrases, AND / NOT, +/-), what a
term matches (a visible label or a kind of it, or text found in the photo), order by
newest or relevance, facets, and pages without a total count."""

from __future__ import annotations

import hashlib
import re
import shlex
import unicodedata

from django.core.cache import cache
from django.db.models import (Case, Count, Exists, FilteredRelation, FloatField, Max, OuterRef, Q, QuerySet, Value,
                              When)
from django.db.models.functions import Coalesce, Greatest, Least
from django.db.models.lookups import GreaterThan

from ..models import DescriptionWord, DetectedText, Label, Photo
from .labels import known_label_names, label_names_under, thresholds, visible_labels_q


def has_label(term: str, *, visible_only: bool = False):
    """An EXISTS condition on photos: a label called ``term`` or under it (Animal
    includes Dog) that is not rejected. An indexed probe per photo. ``visible_only``
    (public pages) counts only the labels those pages show, those at or above the
    display threshold, so no photo matches for a reason nobody can see."""
    shown = visible_labels_q() if visible_only else Q(review_state__in=[Label.Review.PENDING, Label.Review.APPROVED])
    return Exists(Label.objects.filter(shown, photo=OuterRef("pk"), name__in=label_names_under(term)))


def parse_label_query(text: str) -> tuple[list[str], list[str]] | None:
    """``Dog AND Grass NOT Cat`` or ``+Dog +Grass -Cat`` -> (["Dog", "Grass"], ["Cat"]).
    Quotes keep multi-word names together. None when the text uses no operator."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    if not any(t in ("AND", "NOT") or t[:1] in "+-" for t in tokens if t):
        return None
    include, exclude = [], []
    for term, negated, _ in _operands(tokens):
        (exclude if negated else include).append(term)
    return include, exclude


def _operands(tokens: list[str], *, with_or: bool = False):
    """(term, excluded, joins the previous) for each term of a split query: AND is
    implied, NOT or a leading - excludes the next term, a leading + is a no-op; with
    ``with_or``, OR joins a term to the included one before it (an excluded term in
    between breaks the join)."""
    negate = either = last_included = False
    for token in tokens:
        if token == "AND":
            continue
        if token == "NOT":
            negate = True
            continue
        if with_or and token.upper() == "OR":
            either = last_included
            continue
        if token.startswith("-"):
            negate, token = True, token[1:]
        elif token.startswith("+"):
            token = token[1:]
        if token:
            yield token, negate, either and not negate
            last_included = not negate
        negate = either = False


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
            if phrase.lower() in known or singular_label(phrase):  # "Dining Tables" too
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


DESCRIBED_SECONDS = 60
TEXT_WORD_SECONDS = 60


def text_word_key(word: str, display: float) -> str:
    return f"text-word:{display}:" + hashlib.sha256(word.upper().encode()).hexdigest()


def is_text_word(word: str) -> bool:
    """Whether some photo shows ``word`` as text at or above the display threshold: an
    indexed probe, remembered TEXT_WORD_SECONDS (apply_records marks the words an
    analysis finds at once), so a search's terms cost no query each on a warm cache."""
    display = thresholds()["display"]
    return _remembered(text_word_key(word, display), TEXT_WORD_SECONDS, DetectedText.objects.filter(
        type=DetectedText.Type.WORD, confidence__gte=display, text__iexact=word))


def _remembered(key: str, seconds: float, rows) -> bool:
    """Whether ``rows`` has any row, from the cache under ``key`` or asked and kept."""
    known = cache.get(key)
    if known is None:
        known = rows.exists()
        cache.set(key, known, seconds)
    return known


def remember_text_words(words: list[tuple[str, float]]) -> None:
    """(word, confidence) an analysis stored: those at or above the display threshold
    are text a search finds from now on."""
    display = thresholds()["display"]
    cache.set_many({text_word_key(w, display): True for w, confidence in words if confidence >= display},
                   TEXT_WORD_SECONDS)


def described_key(word: str) -> str:
    return "described:" + hashlib.sha256(word.lower().encode()).hexdigest()


def is_described_word(word: str) -> bool:
    """Whether some photo's title or caption has ``word``: an indexed probe, remembered
    DESCRIBED_SECONDS (photo_describe marks the words it adds at once)."""
    return _remembered(described_key(word), DESCRIBED_SECONDS, DescriptionWord.objects.filter(word=word.lower()))


_WORD = re.compile(r"\w+", re.UNICODE)


def description_words(text: str) -> list[str]:
    """The words of a title or caption, or of a search term, as stored and as looked up:
    Unicode-normalised, lower case, runs of letters and digits ("Mum's well-known
    beach," -> mum, s, well, known, beach), at most 100 characters each."""
    return [w[:100] for w in _WORD.findall(unicodedata.normalize("NFC", text or "").lower())]


def has_description(term: str):
    """An EXISTS condition on photos: every word of ``term`` is in the title or caption
    its owner wrote (whatever its case)."""
    condition = Q()
    for word in description_words(term)[:MAX_PHRASE_WORDS]:
        condition &= Exists(DescriptionWord.objects.filter(photo=OuterRef("pk"), word=word))
    return condition


def matches(term: str):
    """A search term matches a photo through a visible label (or a kind of it), text
    found in it, or its owner's title and caption: never for a reason its page does not
    show.

    An OR of two EXISTS keeps PostgreSQL from its semi-join (a label search went from 12
    to 100 ms over 100,000 photos), so each side is added only when it can match: a term
    no photo shows as text (one indexed probe) is a label search as before, and a term
    that names no label is a text search."""
    is_label, is_text, is_described = term_kinds(term)
    conditions = [has_label(term, visible_only=True)] if is_label or not (is_text or is_described) else []
    conditions += [has_text(term)] if is_text else []
    conditions += [has_description(term)] if is_described else []
    condition = conditions[0]
    for other in conditions[1:]:
        condition |= other
    return condition


def term_kinds(term: str) -> tuple[bool, bool, bool]:
    """Whether ``term`` can match as a label (or a kind of one), as text found in some
    photo, as words of some title or caption: cached probes, no query on a warm cache
    (but for a name the taxonomy lacks: an editor's label is only in the label table)."""
    names = {n.lower() for n in known_label_names()}
    under = label_names_under(term)
    is_label = bool({v.lower() for v in under} & names) or Label.objects.filter(name__in=under).exists()
    words = term.split()
    is_text = bool(words) and all(is_text_word(w) for w in words[:MAX_PHRASE_WORDS])
    # The owner's title and caption: one indexed probe per word, remembered a minute.
    described = description_words(term)
    is_described = bool(described) and all(is_described_word(w) for w in described[:MAX_PHRASE_WORDS])
    return is_label, is_text, is_described


def search_groups(search: str) -> tuple[list[list[str]], list[str]]:
    """What a search requires, as groups of alternatives a photo must match one of, and
    what it excludes: AND / NOT / +/- as in the admin, ``cat OR dog`` one group (OR
    binds the words beside it; an excluded word between breaks it); a plural that is no
    label but whose singular is (``Horses``) also matches the singular, included or
    excluded (the word itself may be text on the photo). At most MAX_SEARCH_TERMS
    alternatives in all, and as many exclusions: each costs queries."""
    groups: list[list[str]] = []
    excluded: list[str] = []
    for term, negated, joins in _operands(_search_tokens(search), with_or=True):
        alternatives = [term, *singular_label(term)]
        if negated:
            excluded += alternatives
        elif joins:
            groups[-1] += [a for a in alternatives if a not in groups[-1]]
        else:
            groups.append(alternatives)
    capped, room = [], MAX_SEARCH_TERMS
    for group in groups:
        if room <= 0:
            break
        capped.append(group[:room])
        room -= len(capped[-1])
    return capped, excluded[:MAX_SEARCH_TERMS]


def singular_label(term: str) -> list[str]:
    """The label a plural names, when the word itself names none: "Horses" -> ["Horse"],
    "Puppies" -> ["Puppy"], "Glasses" -> [] (a label of its own)."""
    names = {n.lower(): n for n in known_label_names()}
    lowered = term.lower()
    if lowered in names or len(lowered) < 4 or not lowered.endswith("s"):
        return []
    for singular in ((lowered[:-3] + "y") if lowered.endswith("ies") else "", lowered[:-2] if lowered.endswith("es") else "",
                     lowered[:-1]):
        if singular and singular in names:
            return [names[singular]]
    return []


def refined(search: str, name: str) -> str:
    """``search`` narrowed by one more label (a facet's link): operators left dangling at
    its end go first, so "cat OR" and a chip Dog is "cat Dog", not "cat OR Dog" (which
    would widen it). A name of several words is quoted."""
    words = (search or "").split()
    while words and (words[-1].upper() in ("OR", "AND", "NOT") or words[-1] in ("+", "-")):
        words.pop()
    return " ".join([*words, f'"{name}"' if " " in name else name])


def search_terms(search: str) -> tuple[list[str], list[str]]:
    """The words and phrases a search requires and excludes (capped), flat: every
    alternative of every group (for facets and relevance)."""
    groups, exclude = search_groups(search)
    return [term for group in groups for term in group], exclude


def _search_tokens(search: str) -> list[str]:
    """The search's tokens, quoted phrases kept and words naming a label joined
    (operators among them)."""
    search = (search or "").replace("\x00", "").strip()  # NUL cannot reach PostgreSQL
    if not search:
        return []
    try:
        tokens = shlex.split(search)
    except ValueError:
        tokens = search.split()
    return join_label_phrases(tokens[: MAX_SEARCH_TERMS * MAX_PHRASE_WORDS * 2])


# newest: uploaded most recently; taken: the date taken, latest first (the timeline).
SORTS = ("newest", "taken", "relevance")
ORDERINGS = {"newest": ("-created_at", "-id"), "taken": ("-taken_at", "-id")}
RELEVANCE_WINDOW = 1000


def public_photos(search: str = "", sort: str = "newest") -> QuerySet[Photo]:
    """Public, labelled photos no one has to moderate, narrowed by ``search``."""
    return search_photos(Photo.objects.public(), search, sort)


def owner_photos(*, owner, search: str = "", sort: str = "newest") -> QuerySet[Photo]:
    """Every photo of ``owner`` out of the trash, private, public or removed by a
    moderator alike (the owner sees them all on My photos), narrowed by ``search``."""
    return search_photos(Photo.objects.filter(owner=owner, trashed_at__isnull=True), search, sort)


def search_photos(photos: QuerySet[Photo], search: str = "", sort: str = "newest") -> QuerySet[Photo]:
    """``photos`` narrowed by a search: words are labels or text a photo must show; AND /
    NOT or +/- work as in the admin, ``a OR b`` takes either; a parent matches its kinds;
    a plural its label. Newest upload first, latest taken first, or by relevance: the
    confidences of what matched, summed over the terms (then newest)."""
    groups, exclude = search_groups(search)
    include = [term for group in groups for term in group]
    for group in groups:
        condition = matches(group[0])
        for term in group[1:]:
            condition |= matches(term)
        photos = photos.filter(condition)
    for term in exclude:
        photos = photos.exclude(matches(term))
    photos = photos.order_by(*ORDERINGS.get(sort, ORDERINGS["newest"]))
    if sort == "relevance" and include:
        # Ranked among the newest RELEVANCE_WINDOW matches: a score per photo is a
        # subquery per term, bounded work whatever the library's size.
        window = photos.values("pk")[:RELEVANCE_WINDOW]  # a subquery: no round trip of 2,000 ids
        return _ranked(Photo.objects.filter(pk__in=window), include).order_by("-relevance", "-created_at", "-id")
    return photos


def _ranked(photos: QuerySet[Photo], terms: list[str]) -> QuerySet[Photo]:
    """``photos`` with ``relevance``: for each term, the highest of the confidence of its
    best visible label (or kind of it), of the text that matched (a phrase: its least
    sure word), and 100 for the owner's title or caption (their own words, certain);
    summed over the terms.

    One join per kind (the labels, the words and the title words that can score, as
    filtered relations) and one GROUP BY, not a subquery per term and photo; a term that
    cannot match some kind adds nothing to join for it."""
    kinds = {term: term_kinds(term) for term in terms}
    names = {term: label_names_under(term) for term, (is_label, _, _) in kinds.items() if is_label}
    spoken = {term: term.split()[:MAX_PHRASE_WORDS] for term, (_, is_text, _) in kinds.items() if is_text}
    described = {term: description_words(term)[:MAX_PHRASE_WORDS] for term, (_, _, is_d) in kinds.items() if is_d}
    if names:
        photos = photos.annotate(scoring_label=FilteredRelation("labels", condition=visible_labels_q("labels__") & Q(
            labels__name__in=sorted({n for under in names.values() for n in under}))))
    if spoken:
        spelled = Q()
        for word in {w for words in spoken.values() for w in words}:
            spelled |= Q(texts__text__iexact=word)
        photos = photos.annotate(scoring_text=FilteredRelation("texts", condition=Q(
            texts__type=DetectedText.Type.WORD, texts__confidence__gte=thresholds()["display"]) & spelled))
    if described:
        photos = photos.annotate(scoring_words=FilteredRelation("description_words", condition=Q(
            description_words__word__in=sorted({w for words in described.values() for w in words}))))
    total = Value(0.0, output_field=FloatField())
    for term in terms:
        scores = []
        if term in names:
            scores.append(Coalesce(Max("scoring_label__confidence", filter=Q(scoring_label__name__in=names[term])), 0.0))
        if term in spoken:
            per_word = [Coalesce(Max("scoring_text__confidence", filter=Q(scoring_text__text__iexact=w)), 0.0)
                        for w in spoken[term]]
            scores.append(Least(*per_word) if len(per_word) > 1 else per_word[0])
        if term in described:
            found = [Count("scoring_words", filter=Q(scoring_words__word=w)) for w in described[term]]
            fewest = Least(*found) if len(found) > 1 else found[0]
            scores.append(Case(When(GreaterThan(fewest, 0), then=Value(100.0)), default=Value(0.0),
                               output_field=FloatField()))
        if scores:
            total = total + (Greatest(*scores) if len(scores) > 1 else scores[0])
    return photos.annotate(relevance=total)


FACET_SAMPLE = 2000
FACETS = 10
FACET_SECONDS = 60


def label_facets(search: str, *, owner=None) -> tuple[list[tuple[str, int]], bool]:
    """The most frequent visible labels among the newest FACET_SAMPLE photos a public
    search (or a search of ``owner``'s library) finds, with their counts, and whether
    that sample was full (more results exist than were counted). Cached a minute per
    search and library."""
    scope = f"owner:{owner.pk}" if owner is not None else "public"
    key = "facets:" + hashlib.sha256(f"{scope} {' '.join(search.split()).lower()}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    photos = owner_photos(owner=owner, search=search) if owner is not None else public_photos(search)
    ids = list(photos.values_list("pk", flat=True)[:FACET_SAMPLE])
    counts = list(Label.objects.filter(visible_labels_q(), photo_id__in=ids).values("name")
                  .annotate(n=Count("photo_id", distinct=True)).order_by("-n", "name").values_list("name", "n")[:FACETS])
    result = (counts, len(ids) == FACET_SAMPLE)
    cache.set(key, result, FACET_SECONDS)
    return result


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
