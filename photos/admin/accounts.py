"""Users and groups: Django's own admin screens (superusers only), with the search box
capped like every other."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from .filters import CappedSearchMixin

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AccountAdmin(CappedSearchMixin, UserAdmin):
    pass


@admin.register(Group)
class RoleAdmin(CappedSearchMixin, GroupAdmin):
    pass
