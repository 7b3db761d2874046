"""Reads."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from .models import Label, Photo

# Flagged, escalated and removed photos never appear on public pages.
PUBLIC_MODERATION_STATES = (Photo.Moderation.NONE, Photo.Moderation.CLEARED)


def thresholds() -> dict:
    """Display and flag thresholds (0-100) and per-category flag thresholds, applied
    when showing and flagging, never when storing. Superusers edit them in the admin
    (ModerationSettings); without that row the settings' defaults apply. One query."""
    from .models import ModerationSettings

    row = ModerationSettings.objects.order_by("pk").first()
    if row is None:
        return {"display": settings.LABEL_DISPLAY_THRESHOLD, "flag": settings.MODERATION_FLAG_THRESHOLD, "categories": {}}
    return {"display": row.display_threshold, "flag": row.flag_threshold, "categories": dict(row.category_thresholds or {})}


def visible_labels_q(prefix: str = "") -> Q:
    """Labels a site user sees: approved ones, and machine labels not rejected and at or
    above the display threshold."""
    display = thresholds()["display"]
    return Q(**{f"{prefix}review_state": Label.Review.APPROVED}) | (
        Q(**{f"{prefix}review_state": Label.Review.PENDING}) & Q(**{f"{prefix}confidence__gte": display})
    )


def photos_for_owner(*, owner) -> QuerySet[Photo]:
    """The owner's photos, newest first, with their visible labels prefetched (two queries)."""
    return (
        Photo.objects.filter(owner=owner)
        .exclude(moderation_state=Photo.Moderation.REMOVED)
        .prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.filter(visible_labels_q()).order_by("-confidence", "name"),
                to_attr="visible_labels",
            )
        )
    )


def photo_can_view(*, user, photo: Photo) -> bool:
    """Owner and staff always; anyone else only for public, labelled photos that are
    neither flagged nor removed."""
    owner = photo.owner_id is not None and photo.owner_id == user.pk
    if user.is_authenticated and (user.is_staff or owner):
        return photo.moderation_state != Photo.Moderation.REMOVED or user.is_staff
    return (
        photo.visibility == Photo.Visibility.PUBLIC
        and photo.status == Photo.Status.LABELED
        and photo.moderation_state in PUBLIC_MODERATION_STATES
    )


TAXONOMY_SECONDS = 60


def label_names_under(term: str) -> list[str]:
    """``term`` (as typed, Title Cased) and every label name that has it as a parent, from
    the small taxonomy table (cached for a minute): "Animal" -> Animal, Dog, Cat, Bird..."""
    from django.core.cache import cache

    from .models import LabelTaxonomy

    taxonomy = cache.get("label-taxonomy")
    if taxonomy is None:
        taxonomy = {name: list(parents or []) for name, parents in LabelTaxonomy.objects.values_list("name", "parents")}
        cache.set("label-taxonomy", taxonomy, TAXONOMY_SECONDS)
    variants = {term, term.title(), term.capitalize()}
    lowered = {v.lower() for v in variants}
    children = {name for name, parents in taxonomy.items() if any(p.lower() in lowered for p in parents)}
    return sorted(variants | children)
