"""Editors: the review queue (bulk approve / reject / merge) and labels.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from ..services import review
from ..models import (
    DetectedText,
    Label,
    Photo,
    ReviewItem,
)
from ..renditions import photo_timeline
from ..selectors.timeline import label_segments, player_boxes, renamed
from ..selectors.labels import label_parents, pending_machine_labels_q
from .filters import (
    CappedPaginator,
    ConfidenceBandFilter,
    ParentLabelFilter,
    ReadOnlyAdmin,
    ReviewEngineFilter,
    ReviewNameFilter,
    StaffInputMixin,
)
from .forms import MergeForm


@admin.register(ReviewItem)
class ReviewQueueAdmin(StaffInputMixin, admin.ModelAdmin):
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
        # Not the labels of photos in their owners' trash: no one else sees those. One item
        # per specific label: a parent (Animal) waits beside its kind (Dog, whose row lists
        # its parents, and approving it approves them), and is an item of its own only
        # when the photo has no pending specific label left.
        parents = label_parents()
        specific = Label.objects.filter(pending_machine_labels_q(), photo=OuterRef("photo")).exclude(name__in=parents)
        return (super().get_queryset(request).filter(pending_machine_labels_q(), photo__trashed_at__isnull=True)
                .exclude(Q(name__in=parents) & Exists(specific)))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The change permission is what the bulk actions need; a label's own form would
        # change it without the review service, so one label is only viewed.
        return obj is None and super().has_change_permission(request)

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


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ("name", "photo", "confidence", "source", "review_state", "missing_from_latest", "reviewed_by", "reviewed_at")
    list_filter = ("review_state", "source", "missing_from_latest")
    search_fields = ("name",)
    list_select_related = ("photo", "reviewed_by")
    # A view of the labels: decisions go through the review queue and the review page
    # (photos/review.py), which enforce the curation rules and write the audit entry.


def photo_review(model_admin, request, object_id):
    """One photo at a time: the image with every box drawn over it, its labels with
    approve / reject / rename, an add form, its history, next / previous, and
    keyboard shortcuts (templates/admin/photos/review.html)."""
    photo = get_object_or_404(Photo.objects.select_related("owner"), pk=object_id)
    if not model_admin.has_view_permission(request, photo):
        raise PermissionDenied
    can_change = request.user.has_perm("photos.change_label")
    can_add = request.user.has_perm("photos.add_label")
    focus = request.GET.get("focus", "0")
    if request.method == "POST":
        action = request.POST.get("action")
        if (action == "add" and not can_add) or (action != "add" and not can_change):
            raise PermissionDenied
        label_id = request.POST.get("label", "")
        numeric = label_id.isascii() and label_id.isdigit() and len(label_id) <= 18
        label = Label.objects.filter(pk=int(label_id), photo=photo).first() if numeric else None
        try:
            if action in ("approve", "reject") and label:
                decision = Label.Review.APPROVED if action == "approve" else Label.Review.REJECTED
                review.labels_decide(label_ids=[label.pk], decision=decision, actor=request.user)
            elif action == "rename" and label:
                review.labels_merge(label_ids=[label.pk], into=request.POST.get("name", ""), actor=request.user)
            elif action == "add":
                review.label_add(photo_id=photo.pk, name=request.POST.get("name", ""), actor=request.user)
            else:
                model_admin.message_user(request, "Nothing to do: unknown action or label.", messages.WARNING)
        except review.ReviewError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        focus = request.POST.get("focus", focus)
        return HttpResponseRedirect(f"{reverse('admin:photos_photo_review', args=[photo.pk])}?focus={focus}")
    labels = list(photo.labels.order_by("review_state", "-confidence", "name"))
    pending = Photo.objects.filter(pending_machine_labels_q("labels__")).distinct()
    next_photo = pending.filter(pk__gt=photo.pk).order_by("pk").values_list("pk", flat=True).first()
    previous_photo = pending.filter(pk__lt=photo.pk).order_by("-pk").values_list("pk", flat=True).first()
    # A video's boxes belong to moments of it: its labels carry when they are seen, and the
    # player draws each moment's boxes while it plays (as on the owner's page).
    timeline = photo_timeline(photo) if photo.is_video else None
    names = renamed(photo) if timeline else {}
    seen_at = label_segments(timeline, names)
    for label in labels:
        label.segments = seen_at.get(label.name, [])
    moments = player_boxes(timeline, {lb.name for lb in labels if lb.review_state != Label.Review.REJECTED}, names)
    boxes = [] if photo.is_video else [
        {"label": lb.name, "kind": "label", "confidence": i.get("confidence"), **i["box"]}
        for lb in labels if lb.review_state != Label.Review.REJECTED for i in (lb.instances or []) if "box" in i
    ] + ([] if photo.is_video else [
        {"label": f"Text: {t.text}", "kind": "text", "confidence": t.confidence, **t.box}
        for t in photo.texts.filter(type=DetectedText.Type.LINE)[:100] if t.box
    ])
    for box in boxes:
        box["left_pct"], box["top_pct"] = round(box["left"] * 100, 3), round(box["top"] * 100, 3)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Review {photo}",
        "opts": model_admin.model._meta,
        "photo": photo,
        "labels": labels,
        "boxes": boxes,
        "box_names": sorted({b["label"] for b in boxes} | {m["label"] for m in moments}),
        "player_boxes": moments,
        "events": photo.audit_events.select_related("actor")[:50],
        "next_photo": next_photo,
        "previous_photo": previous_photo,
        "can_change": can_change,
        "can_add": can_add,
        "focus": focus,
    }
    return TemplateResponse(request, "admin/photos/review.html", context)
