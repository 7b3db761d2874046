"""Users and groups: Django's own admin screens (superusers only), with the search box
capped like every other."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction

from ..models import Photo
from ..services import erasure
from .filters import StaffInputMixin

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AccountAdmin(StaffInputMixin, UserAdmin):
    """Deleting an account deletes its photos through photo_delete first (files, every
    version, records, tombstones, audit entries), not by the database's cascade."""

    def _erase_photos(self, request, users) -> None:
        for photo_id in Photo.objects.filter(owner__in=users).values_list("pk", flat=True):
            if not erasure.photo_delete(photo_id=photo_id, actor=request.user):
                raise PermissionDenied

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._erase_photos(request, [obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            self._erase_photos(request, list(queryset))
            super().delete_queryset(request, queryset)

    def get_deleted_objects(self, objs, request):
        # Their photos, labels and reports go with them (above); no separate permission.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


@admin.register(Group)
class RoleAdmin(StaffInputMixin, GroupAdmin):
    pass
