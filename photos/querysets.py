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
        reason, to appeal it, and may download it); for staff with the view permission,
        every photo out of the trash and a trashed one only while it has an open case
        (staff_visible_q). Nobody else sees a removed photo."""
        staff = user.is_authenticated and user.is_staff and user.has_perm("photos.view_photo")
        if staff:
            return self.filter(staff_visible_q(self.model))
        public = Q(pk__in=self.model.objects.public().values("pk"))
        if not user.is_authenticated:
            return self.filter(public)
        return self.filter(public | Q(owner=user))


def staff_visible_q(photo_model) -> Q:
    """The photos staff may see: out of the trash ("no one else will see them", the owner
    was told), and in the trash only while a moderator must decide on them: flagged,
    escalated or appealed, or with a report no moderator has decided yet (a photo trashed
    to dodge a report is still judged)."""
    flag = photo_model._meta.get_field("flags").related_model
    # The trashed ones with a case are few (the partial index on trashed_at finds them):
    # one small hashed subquery, not a condition per photo.
    judged = photo_model.objects.filter(trashed_at__isnull=False).filter(
        Q(moderation_state__in=photo_model.AWAITING_MODERATION)
        | Q(pk__in=flag.objects.filter(resolved_at__isnull=True).values("photo_id"))).values("pk")
    return Q(trashed_at__isnull=True) | Q(pk__in=judged)
