"""Thresholds: superusers only, every change on the audit record.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from ..models import (
    AuditEvent,
    ModerationSettings,
)
from .filters import StaffInputMixin


def _storable(value) -> bool:
    """Every string in ``value`` (keys too, at any depth) is text UTF-8 can encode (no
    lone surrogate such as "\\ud800") without NUL: what PostgreSQL and a page can hold.
    Walked with a stack, not recursion: the value may be nested hundreds deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
            if "\x00" in item:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class LenientJSONField(forms.JSONField):
    """An empty box is {}; JSON Python cannot parse (a 5,000-digit number) is a form
    error, not a server error."""

    def to_python(self, value):
        if value in (None, ""):
            return {}
        try:
            parsed = super().to_python(value)
        except RecursionError:  # [[[[...]]]] 2,000 deep
            raise forms.ValidationError("Not JSON this page accepts: nested too deep.") from None
        except ValueError as exc:  # int too large to convert, and the like
            if isinstance(exc, forms.ValidationError):
                raise
            raise forms.ValidationError(f"Not JSON this page accepts: {exc}") from None
        if not _storable(parsed):
            raise forms.ValidationError("Not JSON this page accepts: it holds a character no text can store "
                                        "(a lone surrogate such as \\ud800, or NUL).")
        return parsed

    def bound_data(self, data, initial):
        """What the form shows again after an error: the text as typed whenever the
        parsed value could not be written back as UTF-8 HTML (a lone surrogate) or parsed."""
        try:
            value = super().bound_data(data, initial)
        except (ValueError, RecursionError):
            return forms.fields.InvalidJSONInput(data)
        return value if _storable(value) else forms.fields.InvalidJSONInput(data)


class ThresholdsForm(forms.ModelForm):
    category_thresholds = LenientJSONField(required=False, help_text=ModerationSettings._meta.get_field("category_thresholds").help_text)

    class Meta:
        model = ModerationSettings
        fields = ("display_threshold", "flag_threshold", "category_thresholds")

    def clean_category_thresholds(self):
        value = self.cleaned_data.get("category_thresholds")
        return {} if value is None else value


@admin.register(ModerationSettings)
class ModerationSettingsAdmin(StaffInputMixin, admin.ModelAdmin):
    """Superusers only; changes apply to the next display and the next analysis."""

    form = ThresholdsForm
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
        if existing is not None and self.has_add_permission(request):
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
