"""Admin v1: every photo with its labels, for editors and moderators.

The changelist runs a constant number of queries whatever the page size: the owner
is joined, labels are prefetched in one query, and the label-name filter's choices
come from one aggregate query.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.core.exceptions import PermissionDenied
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.db.models import Count, OuterRef, Prefetch, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from . import moderation, review, services
from .models import (
    AnalysisRecord,
    AuditEvent,
    DetectedText,
    Flag,
    Label,
    ModerationCase,
    ModerationLabel,
    ModerationSettings,
    Photo,
    ReviewItem,
)
from .selectors import has_label as _has_label
from .selectors import label_names_under, label_parents, parse_label_query  # noqa: F401  (parse_label_query: tested through here)

CHIPS_PER_PHOTO = 8
# Changelists count at most this many rows (40 pages of photos): an exact COUNT over a
# million labels costs more than the page itself, and past that people filter or search.
COUNT_CAP = 2_000
FILTER_CHOICES_SECONDS = 300


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
    cache_key = "admin:photo-label-choices"

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
    list_filter = ("status", "moderation_state", LabelNameFilter, PhotoParentFilter, EngineFilter, "visibility",
                   ("created_at", admin.DateFieldListFilter))
    search_fields = ("original_filename", "labels__name", "=sha256")
    search_help_text = "Filename or label. Label logic: Dog AND Grass NOT Cat (or +Dog +Grass -Cat); parents match too."
    list_select_related = ("owner",)
    list_per_page = 50
    paginator = CappedPaginator
    show_full_result_count = False
    readonly_fields = (
        "preview", "history", "uid", "image", "thumbnail", "content_type", "size", "width", "height", "sha256", "etag",
        "status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at",
        "flagged_at", "cleared_moderation", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("preview", "original_filename", "owner", "visibility")}),
        ("History", {"fields": ("history",)}),
        ("Analysis", {"fields": ("status", "status_reason", "analyzed_at", "engine", "model_versions", "record_updated_at")}),
        ("Moderation", {"fields": ("moderation_state", "flagged_at", "cleared_moderation")}),
        ("File", {"classes": ("collapse",), "fields": ("uid", "image", "thumbnail", "content_type", "size", "width", "height", "sha256", "etag", "created_at", "updated_at")}),
    )
    inlines = (LabelInline, ModerationLabelInline, DetectedTextInline)
    raw_id_fields = ("owner",)
    actions = (
        "add_label", "flag_for_moderation", "reanalyse", "sync_all_now", "refresh_from_dynamodb",
        "export_csv_approved", "export_csv_all", "export_coco_approved", "export_coco_all",
    )
    change_form_template = "admin/photos/photo/change_form.html"

    def get_actions(self, request):
        actions = super().get_actions(request)
        if settings.PHOTOS_PIPELINE != "aws":
            actions.pop("refresh_from_dynamodb", None)
            actions.pop("sync_all_now", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
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
        sent = services.photos_reanalyse(photo_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Sent {sent} photo(s) for analysis; their status below shows the progress "
                                   "(queued, analyzing, labeled).")

    @admin.action(description="Sync everything from DynamoDB now", permissions=["view"])
    def sync_all_now(self, request, queryset):
        from .tasks import sync_labels

        sync_labels.delay()
        self.message_user(request, "Sync started; new labels appear within seconds.")

    def _export(self, queryset, *, kind: str, approved_only: bool):
        from django.http import StreamingHttpResponse

        from . import exports

        scope = "approved" if approved_only else "all"
        if kind == "csv":
            response = StreamingHttpResponse(exports.labels_csv(queryset, approved_only=approved_only), content_type="text/csv")
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
        from . import sync

        result = sync.sync_photos(queryset.values_list("id", flat=True))
        self.message_user(request, f"Refreshed {result.applied} photo(s) from DynamoDB; {result.stale} already up to date.")

    def get_urls(self):
        return [
            path("<path:object_id>/refresh/", self.admin_site.admin_view(self.refresh_view), name="photos_photo_refresh"),
            path("<int:object_id>/review/", self.admin_site.admin_view(self.review_view), name="photos_photo_review"),
            *super().get_urls(),
        ]

    def review_view(self, request, object_id):
        """One photo at a time: the image with every box drawn over it, its labels with
        approve / reject / rename, an add form, its history, next / previous, and
        keyboard shortcuts (templates/admin/photos/review.html)."""
        photo = get_object_or_404(Photo.objects.select_related("owner"), pk=object_id)
        if not self.has_view_permission(request, photo):
            raise PermissionDenied
        can_change = request.user.has_perm("photos.change_label")
        can_add = request.user.has_perm("photos.add_label")
        focus = request.GET.get("focus", "0")
        if request.method == "POST":
            action = request.POST.get("action")
            if (action == "add" and not can_add) or (action != "add" and not can_change):
                raise PermissionDenied
            label_id = request.POST.get("label")
            label = Label.objects.filter(pk=label_id, photo=photo).first() if label_id else None
            try:
                if action in ("approve", "reject") and label:
                    decision = Label.Review.APPROVED if action == "approve" else Label.Review.REJECTED
                    review.labels_decide(label_ids=[label.pk], decision=decision, actor=request.user)
                elif action == "rename" and label:
                    review.labels_merge(label_ids=[label.pk], into=request.POST.get("name", ""), actor=request.user)
                elif action == "add":
                    review.label_add(photo_id=photo.pk, name=request.POST.get("name", ""), actor=request.user)
                else:
                    self.message_user(request, "Nothing to do: unknown action or label.", messages.WARNING)
            except review.ReviewError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            focus = request.POST.get("focus", focus)
            return HttpResponseRedirect(f"{reverse('admin:photos_photo_review', args=[photo.pk])}?focus={focus}")
        labels = list(photo.labels.order_by("review_state", "-confidence", "name"))
        pending = Photo.objects.filter(labels__review_state=Label.Review.PENDING, labels__source=Label.Source.MACHINE)
        next_photo = pending.filter(pk__gt=photo.pk).order_by("pk").values_list("pk", flat=True).first()
        previous_photo = pending.filter(pk__lt=photo.pk).order_by("-pk").values_list("pk", flat=True).first()
        boxes = [
            {"label": lb.name, "kind": "label", "confidence": i.get("confidence"), **i["box"]}
            for lb in labels if lb.review_state != Label.Review.REJECTED for i in (lb.instances or []) if "box" in i
        ] + [
            {"label": f"Text: {t.text}", "kind": "text", "confidence": t.confidence, **t.box}
            for t in photo.texts.filter(type=DetectedText.Type.LINE)[:100] if t.box
        ]
        for box in boxes:
            box["left_pct"], box["top_pct"] = round(box["left"] * 100, 3), round(box["top"] * 100, 3)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review {photo}",
            "opts": self.model._meta,
            "photo": photo,
            "labels": labels,
            "boxes": boxes,
            "box_names": sorted({b["label"] for b in boxes}),
            "events": photo.audit_events.select_related("actor")[:50],
            "next_photo": next_photo,
            "previous_photo": previous_photo,
            "can_change": can_change,
            "can_add": can_add,
            "focus": focus,
        }
        return TemplateResponse(request, "admin/photos/review.html", context)

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
        context["show_review"] = kwargs.get("obj") is not None
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

    @admin.display(description="History")
    def history(self, obj: Photo):
        events = obj.audit_events.select_related("actor")[:20] if obj.pk else []
        if not events:
            return "No editorial or moderation changes yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{} · {} · {} {}</li>",
                             ((e.at.strftime("%Y-%m-%d %H:%M"), e.actor or "system", e.get_action_display(), e.label_name)
                              for e in events)),
        )

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


# --- the editors' review queue ---------------------------------------------------------


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
    cache_key = "admin:review-label-choices"

    def name_rows(self):
        return Label.objects.filter(review_state=Label.Review.PENDING)

    def queryset(self, request, queryset):
        return queryset.filter(name=self.value()) if self.value() else queryset


class AddLabelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Label to add (approved)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class StaffFlagForm(forms.Form):
    reason = forms.ChoiceField(choices=Flag.Reason.choices)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MergeForm(forms.Form):
    into = forms.CharField(max_length=100, label="Merge into (label name)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReviewEngineFilter(EngineFilter):
    def queryset(self, request, queryset):
        return queryset.filter(photo__engine=self.value()) if self.value() else queryset


@admin.register(ReviewItem)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ("photo_thumbnail", "name", "confidence_display", "parents_display", "engine", "photo_link")
    list_display_links = None
    list_filter = (ReviewNameFilter, ParentLabelFilter, ConfidenceBandFilter, ReviewEngineFilter)
    search_fields = ("name",)
    list_select_related = ("photo",)
    list_per_page = 100
    paginator = CappedPaginator
    ordering = ("confidence", "id")
    actions = ("approve", "reject", "merge")
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(review_state=Label.Review.PENDING, source=Label.Source.MACHINE)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="")
    def photo_thumbnail(self, obj):
        return format_html('<img src="{}" alt="" style="max-height:56px;max-width:80px">',
                           reverse("photos:thumbnail", args=[obj.photo.uid])) if obj.photo.thumbnail else "–"

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_display(self, obj):
        return "–" if obj.confidence is None else f"{obj.confidence:.1f} %"

    @admin.display(description="Parents")
    def parents_display(self, obj):
        return ", ".join(obj.parents or [])

    @admin.display(description="Engine", ordering="photo__engine")
    def engine(self, obj):
        return obj.photo.engine

    @admin.display(description="Photo")
    def photo_link(self, obj):
        return format_html('<a href="{}">review photo</a>', reverse("admin:photos_photo_review", args=[obj.photo_id]))

    @admin.action(description="Approve selected labels", permissions=["change"])
    def approve(self, request, queryset):
        changed = review.labels_decide(label_ids=queryset.values_list("id", flat=True), decision=Label.Review.APPROVED, actor=request.user)
        self.message_user(request, f"Approved {changed} label(s).")

    @admin.action(description="Reject selected labels", permissions=["change"])
    def reject(self, request, queryset):
        changed = review.labels_decide(label_ids=queryset.values_list("id", flat=True), decision=Label.Review.REJECTED, actor=request.user)
        self.message_user(request, f"Rejected {changed} label(s).")

    @admin.action(description="Merge / rename selected labels into…", permissions=["change"])
    def merge(self, request, queryset):
        form = MergeForm(request.POST if "into" in request.POST else None)
        if form.is_valid():
            try:
                merged = review.labels_merge(label_ids=queryset.values_list("id", flat=True),
                                             into=form.cleaned_data["into"], actor=request.user, note=form.cleaned_data["note"])
            except review.ReviewError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.message_user(request, f"Merged {merged} label(s) into {form.cleaned_data['into']}.")
            return None
        return TemplateResponse(request, "admin/photos/merge.html", {
            **self.admin_site.each_context(request), "title": "Merge labels", "form": form,
            "labels": queryset.select_related("photo")[:50], "ids": list(queryset.values_list("pk", flat=True)),
            "count": queryset.count(),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        })


class AuditLabelFilter(CachedNameFilter):
    """The history of one label name (``?label=Dog``)."""

    cache_key = "admin:audit-label-choices"
    name_field = "label_name"

    def name_rows(self):
        return AuditEvent.objects.all()

    def queryset(self, request, queryset):
        return queryset.filter(label_name=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "action", "label_name", "actor", "photo")
    list_filter = (AuditLabelFilter, "action")
    search_fields = ("=label_name",)
    list_select_related = ("actor", "photo")
    readonly_fields = ("at", "action", "label_name", "actor", "photo", "before", "after", "note")
    paginator = CappedPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- moderators --------------------------------------------------------------------------


def _can_moderate(request) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm("photos.moderate_photo")


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("clear", "Clear"), ("remove", "Remove"), ("escalate", "Escalate")])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(ModerationCase)
class ModerationQueueAdmin(admin.ModelAdmin):
    """Flagged and escalated photos, most severe first, then oldest first. Previews are
    blurred until clicked."""

    list_display = ("blurred_preview", "original_filename", "moderation_state", "severity_display", "reasons", "flagged_at", "lock", "decide_link")

    class Media:
        js = ["photos/reveal.js"]
        css = {"all": ["photos/moderation.css"]}
    list_display_links = None
    list_filter = ("moderation_state",)
    list_per_page = 50
    paginator = CappedPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        top = ModerationLabel.objects.filter(photo=OuterRef("pk")).order_by("-confidence")
        flags = Flag.objects.filter(photo=OuterRef("pk"), resolved_at__isnull=True).values("photo").annotate(n=Count("id")).values("n")
        # Not super(): it orders by get_ordering() before the annotations exist.
        return (
            self.model._default_manager.filter(moderation_state__in=Photo.AWAITING_MODERATION)
            .select_related("moderation_locked_by")
            .annotate(
                severity=Coalesce(Subquery(top.values("confidence")[:1]), Value(0.0)),
                top_label=Subquery(top.values("name")[:1]),
                open_flags=Coalesce(Subquery(flags), Value(0)),
            )
        )

    def get_ordering(self, request):
        # Annotations, so not in `ordering` (the admin checks that against model fields).
        return ("-severity", "flagged_at", "pk")

    def has_view_permission(self, request, obj=None):
        return _can_moderate(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return _can_moderate(request)

    @admin.display(description="Preview")
    def blurred_preview(self, obj):
        if not obj.thumbnail:
            return "–"
        return format_html(
            '<img src="{}" alt="" class="blurred" style="max-height:72px;max-width:96px" title="Click to reveal">',
            reverse("photos:thumbnail", args=[obj.uid]),
        )

    @admin.display(description="Severity", ordering="severity")
    def severity_display(self, obj):
        label = f" ({obj.top_label})" if obj.top_label else ""
        return f"{obj.severity:.0f} %{label}"

    @admin.display(description="Reports")
    def reasons(self, obj):
        return obj.open_flags or "–"

    @admin.display(description="Locked by")
    def lock(self, obj):
        if obj.moderation_locked_by and obj.moderation_locked_until and obj.moderation_locked_until > timezone.now():
            return str(obj.moderation_locked_by)
        return "–"

    @admin.display(description="")
    def decide_link(self, obj):
        return format_html('<a href="{}">decide</a>', reverse("admin:photos_moderationcase_decide", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:object_id>/decide/", self.admin_site.admin_view(self.decide_view), name="photos_moderationcase_decide"),
            *super().get_urls(),
        ]

    def decide_view(self, request, object_id):
        if not _can_moderate(request):
            raise PermissionDenied
        photo = get_object_or_404(Photo.objects.select_related("owner", "moderation_locked_by"), pk=object_id)
        form = DecisionForm(request.POST or None)
        if request.method == "POST":
            if form.is_valid():
                try:
                    moderation.photo_moderate(photo_id=photo.pk, decision=form.cleaned_data["decision"],
                                              actor=request.user, note=form.cleaned_data["note"])
                except moderation.ModerationError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return HttpResponseRedirect(reverse("admin:photos_moderationcase_decide", args=[photo.pk]))
                self.message_user(request, f"{photo}: {form.cleaned_data['decision']} recorded.")
                return HttpResponseRedirect(reverse("admin:photos_moderationcase_changelist"))
        lock = moderation.case_lock(photo_id=photo.pk, actor=request.user)
        holder = None if lock.acquired else get_user_model().objects.filter(pk=lock.holder_id).first()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Moderate {photo}",
            "opts": self.model._meta,
            "photo": photo,
            "form": form,
            "lock": lock,
            "holder": holder,
            "moderation_labels": photo.moderation_labels.all(),
            "flags": photo.flags.select_related("reporter"),
            "events": photo.audit_events.select_related("actor")[:50],
        }
        return TemplateResponse(request, "admin/photos/decide.html", context)


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("photo", "reason", "reporter", "created_at", "resolved_at")
    list_filter = ("reason", ("resolved_at", admin.EmptyFieldListFilter))
    list_select_related = ("photo", "reporter")
    readonly_fields = ("photo", "reporter", "reason", "note", "created_at", "resolved_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ModerationSettings)
class ModerationSettingsAdmin(admin.ModelAdmin):
    """Superusers only; changes apply to the next display and the next analysis."""

    list_display = ("__str__", "category_thresholds", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_change_permission = has_view_permission

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def add_view(self, request, form_url="", extra_context=None):
        # One row only: "add" edits the existing one. Checked here, not in
        # has_add_permission, which the admin's sidebar calls on every page.
        existing = ModerationSettings.objects.order_by("pk").first()
        if existing is not None:
            return HttpResponseRedirect(reverse("admin:photos_moderationsettings_change", args=[existing.pk]))
        return super().add_view(request, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        before = {}
        if change:
            old = ModerationSettings.objects.get(pk=obj.pk)
            before = {"display": old.display_threshold, "flag": old.flag_threshold, "categories": old.category_thresholds}
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        AuditEvent.objects.create(
            action=AuditEvent.Action.THRESHOLDS, actor=request.user, before=before,
            after={"display": obj.display_threshold, "flag": obj.flag_threshold, "categories": obj.category_thresholds},
        )
