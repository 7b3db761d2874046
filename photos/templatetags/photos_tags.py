"""Template filters for the site's photo pages."""

from __future__ import annotations

from django import template

from photos import selectors

register = template.Library()


@register.filter
def public_title(photo) -> str:
    """What a photo is called where people other than its owner see it: its labels,
    never the file's name (which may carry a person's name, a place, a document)."""
    return selectors.public_title(photo)


@register.filter
def specific_first(labels) -> list:
    """Labels with the specific ones before their parents: Cat, then Animal."""
    return selectors.specific_first(labels)


@register.filter
def reading_order(lines) -> list:
    """Lines of text found in a photo, as a person reads them."""
    return selectors.reading_order(lines)
