"""Admin v1: every photo with its labels, for editors and moderators.

The changelist runs a constant number of queries whatever the page size: the owner
is joined, labels are prefetched in one query, and the label-name filter's choices
come from one aggregate query.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
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
    actions = ("refresh_from_dynamodb",)
    change_form_template = "admin/photos/photo/change_form.html"

    def get_actions(self, request):
        actions = super().get_actions(request)
        if settings.PHOTOS_PIPELINE != "aws":
            actions.pop("refresh_from_dynamodb", None)
        return actions

    @admin.action(description="Refresh labels from DynamoDB", permissions=["view"])
    def refresh_from_dynamodb(self, request, queryset):
        from . import sync

        result = sync.sync_photos(queryset.values_list("id", flat=True))
        self.message_user(request, f"Refreshed {result.applied} photo(s) from DynamoDB; {result.stale} already up to date.")

    def get_urls(self):
        return [
            path("<path:object_id>/refresh/", self.admin_site.admin_view(self.refresh_view), name="photos_photo_refresh"),
            *super().get_urls(),
        ]

    def refresh_view(self, request, object_id):
        """The change page's "Refresh from DynamoDB" button: one GetItem, then apply."""
        from . import sync

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        photo = get_object_or_404(Photo, pk=object_id)
        if not self.has_view_permission(request, photo):
            raise PermissionDenied
        result = sync.sync_photo(photo.pk)
        if result is None:
            self.message_user(request, "No record in DynamoDB for this photo yet.", messages.WARNING)
        elif result.applied:
            self.message_user(request, "Refreshed from DynamoDB.")
        else:
            self.message_user(request, "Already up to date with DynamoDB.")
        return HttpResponseRedirect(reverse("admin:photos_photo_change", args=[photo.pk]))

    def render_change_form(self, request, context, *args, **kwargs):
        context["show_refresh"] = settings.PHOTOS_PIPELINE == "aws" and kwargs.get("obj") is not None
        return super().render_change_form(request, context, *args, **kwargs)

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
