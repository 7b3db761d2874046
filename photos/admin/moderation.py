"""Moderators: the moderation queue with its decide view, and reports.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from ..services import moderation
from ..models import (
    AuditEvent,
    Flag,
    ModerationCase,
    ModerationLabel,
    Photo,
)
from ..services.moderation import awaiting_moderation_q
from .filters import CappedPaginator, ReadOnlyAdmin
from ..pipelines import media_storage
from ..renditions import MAX_STILLS, photo_timeline, still_name
from ..selectors.timeline import moderation_segments
from .forms import DecisionForm


def _can_moderate(request) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm("photos.moderate_photo")


@admin.register(ModerationCase)
class ModerationQueueAdmin(ReadOnlyAdmin):
    """Flagged and escalated photos, most severe first, then oldest first. Previews are
    blurred until clicked."""

    # "decide" first: the action must not end up behind the filters or off a phone's screen.
    list_display = ("decide_link", "blurred_preview", "original_filename", "moderation_state", "severity_display", "reasons",
                    "flagged_at", "lock")

    class Media:
        js = ["photos/reveal.js"]
        css = {"all": ["photos/admin.css", "photos/moderation.css"]}
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
            self.model._default_manager.filter(awaiting_moderation_q())
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
            path("<int:object_id>/flagged/<int:n>/", self.admin_site.admin_view(self.still_view),
                 name="photos_moderationcase_still"),
            *super().get_urls(),
        ]

    def still_view(self, request, object_id, n):
        """A still frame of a video's flagged moment (made by the worker), for moderators only."""
        if not _can_moderate(request):
            raise PermissionDenied
        # Whom staff may see (a video its owner trashed after its case closed is not theirs).
        photo = get_object_or_404(Photo.objects.visible_to(request.user), pk=object_id, kind=Photo.Kind.VIDEO)
        if not 0 <= n < MAX_STILLS:
            raise Http404("No such still.")
        try:
            return media_storage().response(still_name(photo, n), content_type="image/jpeg",
                                            disposition=f'inline; filename="{photo.uid}-flagged-{n}.jpg"')
        except FileNotFoundError:
            raise Http404("Not made.") from None

    def decide_view(self, request, object_id):
        if not _can_moderate(request):
            raise PermissionDenied
        photo = get_object_or_404(Photo.objects.select_related("owner", "moderation_locked_by"), pk=object_id)
        form = DecisionForm(request.POST or None, initial={"seen_state": photo.moderation_state})
        if photo.moderation_state == Photo.Moderation.APPEALED:  # an appeal is cleared or removed, not escalated
            form.fields["decision"].choices = [c for c in form.fields["decision"].choices if c[0] != "escalate"]
        if request.method == "POST":
            if form.is_valid():
                try:
                    moderation.photo_moderate(photo_id=photo.pk, decision=form.cleaned_data["decision"],
                                              actor=request.user, note=form.cleaned_data["note"],
                                              reason=form.cleaned_data["reason"],
                                              seen_state=form.cleaned_data["seen_state"] or None)
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
            # A video's flagged moments, from its timeline: each a button that seeks there.
            "moderation_segments": moderation_segments(photo_timeline(photo)) if photo.is_video else [],
            "flags": photo.flags.select_related("reporter"),
            "events": photo.audit_events.select_related("actor")[:50],
            "appeal": photo.audit_events.filter(action=AuditEvent.Action.APPEAL).order_by("-at", "-id").first()
            if photo.moderation_state == Photo.Moderation.APPEALED else None,
        }
        return TemplateResponse(request, "admin/photos/decide.html", context)


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    # Read-only: a report is evidence; a moderator's decision resolves it, nothing deletes it.
    list_display = ("photo", "reason", "reporter", "created_at", "resolved_at")
    list_filter = ("reason", ("resolved_at", admin.EmptyFieldListFilter))
    list_select_related = ("photo", "reporter")
    readonly_fields = ("photo", "reporter", "reason", "note", "created_at", "resolved_at")
