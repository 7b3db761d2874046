"""Labels as people see them: the thresholds in force, which labels are visible, the
taxonomy (which names are kinds of which), and specific labels first."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import Prefetch, Q, QuerySet

from ..models import Label, LabelTaxonomy, ModerationSettings, Photo


THRESHOLDS_KEY = "moderation-thresholds"
THRESHOLDS_SECONDS = 10


def thresholds() -> dict:
    """Display and flag thresholds (0-100) and per-category flag thresholds, applied
    when showing and flagging, never when storing. Superusers edit them in the admin
    (ModerationSettings); without that row the settings' defaults apply.

    Read once and cached (a search asks for them in every condition it builds): a save
    of the row clears the cache at once (photos.apps); another process without a shared
    cache (REDIS_CACHE_URL) sees a change within THRESHOLDS_SECONDS."""
    cached = cache.get(THRESHOLDS_KEY)
    if cached is None:
        cached = _read_thresholds()
        cache.set(THRESHOLDS_KEY, cached, THRESHOLDS_SECONDS)
    return cached


def forget_thresholds(**kwargs) -> None:
    """Signal receiver: the thresholds row changed."""
    cache.delete(THRESHOLDS_KEY)


def _read_thresholds() -> dict:
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


def with_visible_labels(photos: QuerySet[Photo]) -> QuerySet[Photo]:
    return photos.prefetch_related(
        Prefetch("labels", queryset=Label.objects.filter(visible_labels_q()).order_by("-confidence", "name"),
                 to_attr="visible_labels")
    )


TAXONOMY_SECONDS = 60


def _taxonomy() -> dict[str, list[str]]:
    """name -> parents for every machine label name (cached for a minute)."""
    taxonomy = cache.get("label-taxonomy")
    if taxonomy is None:
        taxonomy = {name: list(parents or []) for name, parents in LabelTaxonomy.objects.values_list("name", "parents")}
        cache.set("label-taxonomy", taxonomy, TAXONOMY_SECONDS)
    return taxonomy


# The admin's label filters list the most common names with counts, cached
# (admin/filters.py); an editor's decision forgets them so the counts are fresh.
LABEL_CHOICE_KEYS = ("admin:photo-label-choices", "admin:review-label-choices", "admin:audit-label-choices")


def forget_label_choices() -> None:
    cache.delete_many(LABEL_CHOICE_KEYS)


def _aliases() -> dict[str, list[str]]:
    """alias (lower case) -> the label names that have it ("human" -> ["Person"]), as the
    engine reported them (Rekognition's Aliases; the local detector's too); a minute."""
    aliases = cache.get("label-aliases")
    if aliases is None:
        aliases = {}
        for name, names in LabelTaxonomy.objects.exclude(aliases=[]).values_list("name", "aliases"):
            for alias in names or []:
                aliases.setdefault(str(alias).lower(), []).append(name)
        cache.set("label-aliases", aliases, TAXONOMY_SECONDS)
    return aliases


def label_parents() -> list[str]:
    """Every name that is some label's parent (Animal, Vehicle...), sorted."""
    return sorted({parent for parents in _taxonomy().values() for parent in parents})


def known_label_names() -> set[str]:
    """Every label name, parent and alias the taxonomy knows, as spelled."""
    taxonomy = _taxonomy()
    return set(taxonomy) | {parent for parents in taxonomy.values() for parent in parents} | {
        alias.title() for alias in _aliases()}


def label_names_under(term: str) -> list[str]:
    """``term`` (as typed, Title Cased), the labels it is an alias of, and every label
    name that has one of those as a parent, from the small taxonomy table: "Animal" ->
    Animal, Dog, Cat, Bird...; "Human" -> Human, Person, Face, Head..."""
    taxonomy = _taxonomy()
    variants = {term, term.title(), term.capitalize()} | set(_aliases().get(term.lower(), []))
    lowered = {v.lower() for v in variants}
    children = {name for name, parents in taxonomy.items() if any(p.lower() in lowered for p in parents)}
    return sorted(variants | children)


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
