"""Admin v1: every photo with its labels, for editors and moderators.

The changelist runs a constant number of queries whatever the page size: the owner
is joined, labels are prefetched in one query, and the label-name filter's choices
come from one aggregate query.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .models import AnalysisRecord, DetectedText, Label, ModerationLabel, Photo

CHIPS_PER_PHOTO = 8


class LabelNameFilter(admin.SimpleListFilter):
    title = "label"
    parameter_name = "label"
    # The most common names; any other is reachable through search.
    MAX_CHOICES = 50

    def lookups(self, request, model_admin):
        names = (
            Label.objects.exclude(review_state=Label.Review.REJECTED)
            .values("name")
            .annotate(n=Count("id"))
            .order_by("-n", "name")[: self.MAX_CHOICES]
        )
        return [(row["name"], f"{row['name']} ({row['n']})") for row in names]

    def queryset(self, request, queryset):
        if self.value():
            # One filter() call: both conditions apply to the same label row.
            return queryset.filter(
                labels__name=self.value(), labels__review_state__in=[Label.Review.PENDING, Label.Review.APPROVED]
            )
        return queryset


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0
    fields = ("name", "confidence", "source", "review_state", "missing_from_latest", "parents", "reviewed_by", "reviewed_at")
    readonly_fields = ("confidence", "source", "missing_from_latest", "parents", "reviewed_by", "reviewed_at")
    ordering = ("-confidence", "name")
    show_change_link = True


class ModerationLabelInline(admin.TabularInline):
    model = ModerationLabel
    extra = 0
    fields = ("name", "parent", "level", "confidence")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DetectedTextInline(admin.TabularInline):
    model = DetectedText
    extra = 0
    fields = ("text", "type", "confidence")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(type=DetectedText.Type.LINE)


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ("thumbnail_tag", "original_filename", "owner", "status", "label_chips", "moderation_state", "engine", "created_at")
    list_display_links = ("thumbnail_tag", "original_filename")
    list_filter = ("status", "moderation_state", LabelNameFilter, "engine", "visibility", ("created_at", admin.DateFieldListFilter))
    search_fields = ("original_filename", "labels__name", "=sha256")
    list_select_related = ("owner",)
    list_per_page = 50
    date_hierarchy = "created_at"
    readonly_fields = (
        "preview", "uid", "image", "thumbnail", "content_type", "size", "width", "height", "sha256", "etag",
        "status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at",
        "flagged_at", "cleared_moderation", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("preview", "original_filename", "owner", "visibility")}),
        ("Analysis", {"fields": ("status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at")}),
        ("Moderation", {"fields": ("moderation_state", "flagged_at", "cleared_moderation")}),
        ("File", {"classes": ("collapse",), "fields": ("uid", "image", "thumbnail", "content_type", "size", "width", "height", "sha256", "etag", "created_at", "updated_at")}),
    )
    inlines = (LabelInline, ModerationLabelInline, DetectedTextInline)
    raw_id_fields = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.exclude(review_state=Label.Review.REJECTED).order_by("-confidence", "name"),
                to_attr="chip_labels",
            )
        )

    @admin.display(description="")
    def thumbnail_tag(self, obj: Photo):
        if not obj.thumbnail:
            return "–"
        return format_html('<img src="{}" alt="" style="max-height:64px;max-width:96px">', reverse("photos:thumbnail", args=[obj.uid]))

    @admin.display(description="Labels")
    def label_chips(self, obj: Photo):
        labels = getattr(obj, "chip_labels", [])
        chips = format_html_join(
            " ",
            '<span style="background:{};border-radius:9px;padding:1px 7px;white-space:nowrap">{} {}</span>',
            (
                (
                    "#d7f0db" if lb.review_state == Label.Review.APPROVED else "#e8eefc",
                    lb.name,
                    f"{lb.confidence:.0f}%" if lb.confidence is not None else "",
                )
                for lb in labels[:CHIPS_PER_PHOTO]
            ),
        )
        more = len(labels) - CHIPS_PER_PHOTO
        return format_html("{}{}", chips, f" +{more}" if more > 0 else "")

    @admin.display(description="Image")
    def preview(self, obj: Photo):
        if not obj.pk:
            return "–"
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="" style="max-width:640px;max-height:480px"></a>',
            reverse("photos:image", args=[obj.uid]),
        )


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ("name", "photo", "confidence", "source", "review_state", "missing_from_latest", "reviewed_by", "reviewed_at")
    list_filter = ("review_state", "source", "missing_from_latest")
    search_fields = ("name",)
    list_select_related = ("photo", "reviewed_by")
    raw_id_fields = ("photo",)
    readonly_fields = ("confidence", "parents", "categories", "aliases", "instances", "missing_from_latest", "reviewed_by", "reviewed_at")


@admin.register(AnalysisRecord)
class AnalysisRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "status", "engine", "updated_at", "received_at")
    list_filter = ("status", "engine")
    search_fields = ("=key",)
    readonly_fields = ("photo", "key", "updated_at", "status", "engine", "payload", "received_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
