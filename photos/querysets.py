"""Who sees which photos, spelled once: ``Photo.objects.public()`` and
``Photo.objects.visible_to(user)`` (and ``Photo.is_public`` for one photo already
loaded, which the tests hold to ``public()``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class PhotoQuerySet(models.QuerySet):
    def public(self) -> PhotoQuerySet:
        """Public, labelled photos out of the trash that no moderator holds back: the
        gallery, the public API and everyone who is not the owner or staff."""
        photo = self.model
        return self.filter(visibility=photo.Visibility.PUBLIC, status=photo.Status.LABELED,
                           moderation_state__in=photo.PUBLIC_MODERATION_STATES, trashed_at__isnull=True)

    def visible_to(self, user) -> PhotoQuerySet:
        """What ``user`` may open: public photos for everyone; every photo of their own for
        owners (a photo a moderator removed too: they see what was removed, with the
        reason, to appeal it, and may download it); every photo for staff with the view
        permission. Nobody else sees a removed photo."""
        staff = user.is_authenticated and user.is_staff and user.has_perm("photos.view_photo")
        if staff:
            return self.all()
        public = Q(pk__in=self.model.objects.public().values("pk"))
        if not user.is_authenticated:
            return self.filter(public)
        return self.filter(public | Q(owner=user))
