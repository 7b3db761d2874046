"""The audit trail: read-only, for everyone staff.
"""

from __future__ import annotations

from django.contrib import admin

from ..models import (
    AuditEvent,
)
from .filters import AuditLabelFilter, CappedPaginator, ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "summary", "actor", "photo")

    class Media:
        css = {"all": ["photos/admin.css"]}
    list_filter = (AuditLabelFilter, "action")
    search_fields = ("=label_name",)
    list_select_related = ("actor", "photo")
    readonly_fields = ("at", "action", "label_name", "actor", "photo", "before", "after", "note")
    paginator = CappedPaginator
    show_full_result_count = False
