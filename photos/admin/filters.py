"""Changelist filters and the capped paginator shared by the admin screens.

The changelists run a constant number of queries whatever the page size; counts stop at
COUNT_CAP and filter choices are cached, because both aggregate over every label.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseBadRequest
from django.utils.functional import cached_property

from ..models import (
    AuditEvent,
    Label,
)
from ..selectors.labels import LABEL_CHOICE_KEYS, label_names_under, label_parents
from ..selectors.search import has_label as _has_label

# Changelists count at most this many rows (40 pages of photos): an exact COUNT over a
# million labels costs more than the page itself, and past that people filter or search.
COUNT_CAP = 2_000
FILTER_CHOICES_SECONDS = 300


# Search boxes take at most this much: Django ANDs one condition per word, and thousands
# of words held a PostgreSQL backend for minutes (SQLite: "Expression tree is too large").
MAX_SEARCH_WORDS = 8
MAX_SEARCH_CHARS = 200


def capped_search_term(search_term: str) -> str:
    return " ".join((search_term or "")[: MAX_SEARCH_CHARS * 4].split()[:MAX_SEARCH_WORDS])[:MAX_SEARCH_CHARS]


class StaffInputMixin:
    """For every model admin: a capped search box (see MAX_SEARCH_WORDS), and actions
    that refuse a selection that is not row ids (a crafted POST) instead of a 500."""

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, capped_search_term(search_term))

    def changelist_view(self, request, extra_context=None):
        # A NUL byte cannot reach PostgreSQL in a query parameter (a 500 from ?label=%00).
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest("A filter or search held a NUL character; nothing was looked up.")
        # The page says what it lists ("Labels to review"), not Django's "Select label to
        # review to change".
        title = str(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title[:1].upper() + title[1:], **(extra_context or {})})

    def response_action(self, request, queryset):
        from django.contrib import messages
        from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
        from django.http import HttpResponseRedirect

        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if any(not (value.isascii() and value.isdigit() and len(value) <= 18) for value in selected):
            self.message_user(request, "The selection was not a list of rows; nothing was done.", messages.WARNING)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class ReadOnlyAdmin(StaffInputMixin, admin.ModelAdmin):
    """A screen to look at rows that no admin form may add, change or delete (decisions
    go through the services; some rows are evidence)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CappedPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        """True when there are more rows than were counted (templates say "2,000+")."""
        return self.count > COUNT_CAP

    cap = COUNT_CAP


class EngineFilter(admin.SimpleListFilter):
    """Fixed choices: a DISTINCT over every photo on each page view is not worth it."""

    title = "engine"
    parameter_name = "engine"

    def lookups(self, request, model_admin):
        return [("local", "local"), ("rekognition", "rekognition")]

    def queryset(self, request, queryset):
        return queryset.filter(engine=self.value()) if self.value() else queryset


def cached_choices(key: str, compute, current: str | None = None):
    """Filter sidebars aggregate over every label; their choices change slowly. The
    value in use is always offered: a filter without choices would be ignored."""
    choices = cache.get(key)
    if choices is None:
        choices = compute()
        cache.set(key, choices, FILTER_CHOICES_SECONDS)
    if current and current not in {value for value, _ in choices}:
        choices = [*choices, (current, current)]
    return choices


class CachedNameFilter(admin.SimpleListFilter):
    """A filter whose choices are the most common names of some rows, cached (they
    aggregate over every label). Subclasses say which rows and which field."""

    title = "label"
    parameter_name = "label"
    # The most common names; any other is reachable through search.
    MAX_CHOICES = 50
    cache_key = ""
    name_field = "name"

    def name_rows(self):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        field = self.name_field

        def compute():
            rows = self.name_rows().values(field).annotate(n=Count("id")).order_by("-n", field)[: self.MAX_CHOICES]
            return [(row[field], f"{row[field]} ({row['n']})") for row in rows if row[field]]

        return cached_choices(self.cache_key, compute, self.value())


class LabelNameFilter(CachedNameFilter):
    cache_key = LABEL_CHOICE_KEYS[0]

    def name_rows(self):
        return Label.objects.exclude(review_state=Label.Review.REJECTED)

    def queryset(self, request, queryset):
        if self.value():
            # One filter() call: both conditions apply to the same label row.
            return queryset.filter(
                labels__name=self.value(), labels__review_state__in=[Label.Review.PENDING, Label.Review.APPROVED]
            )
        return queryset


class ParentFilter(admin.SimpleListFilter):
    """Rows under a parent label (Animal includes Dog); the choices are the parents the
    taxonomy knows. Subclasses say how a parent narrows their rows."""

    title = "parent label"
    parameter_name = "parent"

    def lookups(self, request, model_admin):
        return [(p, p) for p in label_parents()]


class PhotoParentFilter(ParentFilter):
    def queryset(self, request, queryset):
        return queryset.filter(_has_label(self.value())) if self.value() else queryset


class ConfidenceBandFilter(admin.SimpleListFilter):
    title = "confidence"
    parameter_name = "band"
    BANDS = {"lt50": (None, 50), "50-70": (50, 70), "70-90": (70, 90), "gte90": (90, None)}

    def lookups(self, request, model_admin):
        return [("lt50", "under 50 %"), ("50-70", "50-70 %"), ("70-90", "70-90 %"), ("gte90", "90 % and over")]

    def queryset(self, request, queryset):
        if self.value() not in self.BANDS:
            return queryset
        low, high = self.BANDS[self.value()]
        if low is not None:
            queryset = queryset.filter(confidence__gte=low)
        if high is not None:
            queryset = queryset.filter(confidence__lt=high)
        return queryset


class ParentLabelFilter(ParentFilter):
    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(name__in=label_names_under(value)) if value else queryset


class ReviewNameFilter(CachedNameFilter):
    cache_key = LABEL_CHOICE_KEYS[1]

    def name_rows(self):
        return Label.objects.filter(review_state=Label.Review.PENDING)

    def queryset(self, request, queryset):
        return queryset.filter(name=self.value()) if self.value() else queryset


class ReviewEngineFilter(EngineFilter):
    def queryset(self, request, queryset):
        return queryset.filter(photo__engine=self.value()) if self.value() else queryset


class AuditLabelFilter(CachedNameFilter):
    """The history of one label name (``?label=Dog``)."""

    cache_key = LABEL_CHOICE_KEYS[2]
    name_field = "label_name"

    def name_rows(self):
        return AuditEvent.objects.all()

    def queryset(self, request, queryset):
        return queryset.filter(label_name=self.value()) if self.value() else queryset
