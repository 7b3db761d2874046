"""Photos: the changelist with label chips and search, the change page (read-only
facts: every state change goes through a service), exports, analysis records.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .. import exports
from ..services import erasure, moderation, review
from ..services.photos import photos_reanalyse
from ..pipelines import pipeline
from ..models import (
    AnalysisRecord,
    PendingErasure,
    DetectedText,
    Label,
    ModerationLabel,
    Photo,
)
from ..querysets import staff_visible_q
from ..selectors.search import has_label as _has_label
from ..selectors.search import parse_label_query
from .filters import (
    CappedPaginator,
    EngineFilter,
    LabelNameFilter,
    PhotoParentFilter,
    ReadOnlyAdmin,
    StaffInputMixin,
    capped_search_term,
)
from .forms import AddLabelForm, StaffFlagForm
from .review import photo_review

CHIPS_PER_PHOTO = 8


class ReadOnlyInline(admin.TabularInline):
    """Facts shown on the photo's page; decisions are made on the review page or in the
    moderation queue, through the services."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.display(description="confidence")
def percent(obj) -> str:
    """0-100 confidences as people read them: 98.7 %, not 98.73012614250183."""
    return "" if obj.confidence is None else f"{obj.confidence:.1f} %"


class LabelInline(ReadOnlyInline):
    model = Label
    fields = ("name", percent, "source", "review_state", "missing_from_latest", "parents", "reviewed_by", "reviewed_at")
    ordering = ("-confidence", "name")


class ModerationLabelInline(ReadOnlyInline):
    model = ModerationLabel
    fields = ("name", "parent", "level", percent)


class DetectedTextInline(ReadOnlyInline):
    model = DetectedText
    fields = ("text", "type", percent)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(type=DetectedText.Type.LINE)


@admin.register(Photo)
class PhotoAdmin(StaffInputMixin, admin.ModelAdmin):
    class Media:
        css = {"all": ["photos/admin.css"]}

    # The engine is a filter, not a column: the table fits 1280 px.
    list_display = ("thumbnail_tag", "original_filename", "owner", "status", "label_chips", "moderation_state", "uploaded")
    list_display_links = ("thumbnail_tag", "original_filename")
    list_filter = ("status", "moderation_state", LabelNameFilter, PhotoParentFilter, EngineFilter, "visibility",
                   ("created_at", admin.DateFieldListFilter))
    search_fields = ("original_filename", "labels__name", "=sha256")
    search_help_text = "Filename or label. Label logic: Dog AND Grass NOT Cat (or +Dog +Grass -Cat); parents match too."
    list_select_related = ("owner",)
    list_per_page = 50
    paginator = CappedPaginator
    show_full_result_count = False
    # Every field is read-only: visibility is the owner's to change, moderation state the
    # moderation service's, ownership never changes here (issue #10).
    readonly_fields = (
        "original_filename", "owner", "visibility", "moderation_state",
        "preview", "history", "uid", "image_key", "thumbnail_key", "content_type", "size", "width", "height", "sha256", "etag",
        "status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at",
        "flagged_at", "cleared_moderation", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("preview", "original_filename", "owner", "visibility")}),
        ("History", {"fields": ("history",)}),
        ("Analysis", {"fields": ("status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at")}),
        ("Moderation", {"fields": ("moderation_state", "flagged_at", "cleared_moderation")}),
        ("File", {"classes": ("collapse",), "fields": ("uid", "image_key", "thumbnail_key", "content_type", "size", "width", "height", "sha256", "etag", "created_at", "updated_at")}),
    )
    inlines = (LabelInline, ModerationLabelInline, DetectedTextInline)
    actions = (
        "add_label", "flag_for_moderation", "reanalyse", "sync_all_now", "refresh_from_dynamodb",
        "export_csv_approved", "export_csv_all", "export_coco_approved", "export_coco_all",
    )
    change_form_template = "admin/photos/photo/change_form.html"

    def has_add_permission(self, request):
        return False  # photos come from uploads

    def delete_model(self, request, obj):
        if not erasure.photo_delete(photo_id=obj.pk, actor=request.user):
            raise PermissionDenied

    def get_deleted_objects(self, objs, request):
        # Labels, texts and reports go with their photo (photo_delete): no separate
        # permission to delete those rows is needed, and none is granted.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_queryset(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            erasure.photo_delete(photo_id=pk, actor=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not pipeline().syncs_records:
            actions.pop("refresh_from_dynamodb", None)
            actions.pop("sync_all_now", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        search_term = capped_search_term(search_term)
        parsed = parse_label_query(search_term)
        if parsed is None:
            return super().get_search_results(request, queryset, search_term)
        include, exclude = parsed
        for term in include:
            queryset = queryset.filter(_has_label(term))
        for term in exclude:
            queryset = queryset.exclude(_has_label(term))
        return queryset, False

    def has_add_label_permission(self, request):
        return request.user.has_perm("photos.add_label")

    @admin.action(description="Add a label to selected photos…", permissions=["add_label"])
    def add_label(self, request, queryset):
        form = AddLabelForm(request.POST if "name" in request.POST else None)
        if form.is_valid():
            try:
                changed = review.labels_add(photo_ids=queryset.values_list("pk", flat=True), name=form.cleaned_data["name"],
                                            actor=request.user, note=form.cleaned_data["note"])
            except review.ReviewError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.message_user(request, f"Label {form.cleaned_data['name']} approved on {changed} photo(s).")
            return None
        return self._intermediate(request, queryset, form, "add_label", "Add a label")

    @admin.action(description="Flag selected photos for moderation…", permissions=["view"])
    def flag_for_moderation(self, request, queryset):
        form = StaffFlagForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            counted = sum(
                moderation.photo_flag(photo_id=pk, reporter=request.user, reason=form.cleaned_data["reason"],
                                      note=form.cleaned_data["note"])
                for pk in queryset.values_list("pk", flat=True)
            )
            self.message_user(request, f"Flagged {counted} photo(s) for moderation.")
            return None
        return self._intermediate(request, queryset, form, "flag_for_moderation", "Flag for moderation")

    def _intermediate(self, request, queryset, form, action: str, title: str):
        return TemplateResponse(request, "admin/photos/photo_action.html", {
            **self.admin_site.each_context(request), "title": title, "form": form, "action": action,
            "photos": queryset[:50], "ids": list(queryset.values_list("pk", flat=True)), "count": queryset.count(),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        })

    def has_reanalyse_permission(self, request):
        return request.user.has_perm("photos.change_label")

    @admin.action(description="Re-analyse selected photos", permissions=["reanalyse"])
    def reanalyse(self, request, queryset):
        sent = photos_reanalyse(photo_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Sent {sent} photo(s) for analysis; their status below shows the progress "
                                   "(queued, analyzing, labeled).")

    @admin.action(description="Sync everything from DynamoDB now", permissions=["view"])
    def sync_all_now(self, request, queryset):
        pipeline().sync_soon()
        self.message_user(request, "Sync started; new labels appear within seconds.")

    def _export(self, queryset, *, kind: str, approved_only: bool):
        scope = "approved" if approved_only else "all"
        if kind == "csv":
            response = StreamingHttpResponse(exports.labels_csv(queryset, approved_only=approved_only), content_type="text/csv; charset=utf-8")
            name = f"labels-{scope}.csv"
        else:
            response = StreamingHttpResponse(exports.labels_coco(queryset, approved_only=approved_only),
                                             content_type="application/json")
            name = f"labels-{scope}-coco.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Export approved labels (CSV)", permissions=["view"])
    def export_csv_approved(self, request, queryset):
        return self._export(queryset, kind="csv", approved_only=True)

    @admin.action(description="Export all labels with their states (CSV)", permissions=["view"])
    def export_csv_all(self, request, queryset):
        return self._export(queryset, kind="csv", approved_only=False)

    @admin.action(description="Export approved labels (COCO JSON)", permissions=["view"])
    def export_coco_approved(self, request, queryset):
        return self._export(queryset, kind="coco", approved_only=True)

    @admin.action(description="Export all labels with their states (COCO JSON)", permissions=["view"])
    def export_coco_all(self, request, queryset):
        return self._export(queryset, kind="coco", approved_only=False)

    @admin.action(description="Refresh labels from DynamoDB", permissions=["view"])
    def refresh_from_dynamodb(self, request, queryset):
        if not pipeline().syncs_records:
            self.message_user(request, "This pipeline has no DynamoDB records to refresh from.", messages.WARNING)
            return None
        result = pipeline().refresh(photo_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Refreshed {result.applied} photo(s) from DynamoDB; {result.stale} already up to date.")

    def get_urls(self):
        return [
            path("<int:object_id>/refresh/", self.admin_site.admin_view(self.refresh_view), name="photos_photo_refresh"),
            path("<int:object_id>/review/", self.admin_site.admin_view(self.review_view), name="photos_photo_review"),
            *super().get_urls(),
        ]

    def review_view(self, request, object_id):
        return photo_review(self, request, object_id)

    def refresh_view(self, request, object_id):
        """The change page's "Refresh from DynamoDB" button: read its record, then apply."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        photo = get_object_or_404(Photo, pk=object_id)
        if not self.has_view_permission(request, photo):
            raise PermissionDenied
        if not pipeline().syncs_records:  # the local pipeline writes records straight to the database
            self.message_user(request, "This pipeline has no DynamoDB records to refresh from.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:photos_photo_change", args=[photo.pk]))
        result = pipeline().refresh(photo_ids=[photo.pk])
        if not result.applied and not result.stale:
            self.message_user(request, "No record in DynamoDB for this photo yet.", messages.WARNING)
        elif result.applied:
            self.message_user(request, "Refreshed from DynamoDB.")
        else:
            self.message_user(request, "Already up to date with DynamoDB.")
        return HttpResponseRedirect(reverse("admin:photos_photo_change", args=[photo.pk]))

    def render_change_form(self, request, context, *args, **kwargs):
        context["show_refresh"] = pipeline().syncs_records and kwargs.get("obj") is not None
        context["show_review"] = kwargs.get("obj") is not None
        return super().render_change_form(request, context, *args, **kwargs)

    def get_queryset(self, request):
        # Trashed photos are their owners' alone, but for an open moderation case.
        return super().get_queryset(request).filter(staff_visible_q(Photo)).prefetch_related(
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
    @admin.display(description="Uploaded", ordering="created_at")
    def uploaded(self, obj: Photo) -> str:
        return f"{obj.created_at:%Y-%m-%d %H:%M}"

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

    @admin.display(description="History")
    def history(self, obj: Photo):
        events = obj.audit_events.select_related("actor")[:20] if obj.pk else []
        if not events:
            return "No editorial or moderation changes yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{} · {} · {}</li>",
                             ((e.at.strftime("%Y-%m-%d %H:%M"), e.actor or "system", e.summary) for e in events)),
        )

    # Names, not links: the file field's widget links to storage.url(), on S3 a presigned
    # URL of the original (with its EXIF), which only the owner may have.
    @admin.display(description="Image key")
    def image_key(self, obj: Photo):
        return obj.image.name if obj.image else "–"

    @admin.display(description="Thumbnail key")
    def thumbnail_key(self, obj: Photo):
        return obj.thumbnail.name if obj.thumbnail else "–"

    @admin.display(description="Image")
    def preview(self, obj: Photo):
        if not obj.pk:
            return "–"
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="" style="max-width:640px;max-height:480px"></a>',
            reverse("photos:image", args=[obj.uid]),
        )


@admin.register(AnalysisRecord)
class AnalysisRecordAdmin(ReadOnlyAdmin):
    # Read-only: the records as received; erasure goes through photo_delete.
    list_display = ("key", "status", "engine", "updated_at", "received_at")
    list_filter = ("status", "engine")
    search_fields = ("=key",)
    readonly_fields = ("photo", "key", "updated_at", "status", "engine", "payload", "received_at")


@admin.register(PendingErasure)
class PendingErasureAdmin(ReadOnlyAdmin):
    # Read-only: erasures whose files storage still holds; the worker retries them
    # (photos.tasks.finish_erasures) until none is left. A row here for long is a page.
    list_display = ("key", "attempts", "next_attempt_at", "last_error", "created_at")
    search_fields = ("=key",)
    readonly_fields = ("key", "names", "reason", "attempts", "next_attempt_at", "last_error", "created_at")
