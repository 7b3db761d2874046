"""The Editors and Moderators groups and the permissions each holds."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ROLES: dict[str, list[str]] = {
    # Editors review machine labels: see photos, add / change labels.
    "Editors": [
        "photos.view_photo",
        "photos.view_label",
        "photos.add_label",
        "photos.change_label",
        "photos.view_moderationlabel",
        "photos.view_detectedtext",
        "photos.view_reviewitem",
        "photos.change_reviewitem",
        "photos.view_auditevent",
    ],
    # Moderators decide on flagged photos: see everything about a photo; its moderation
    # state changes only through the moderation queue (moderate_photo), never the form.
    "Moderators": [
        "photos.view_photo",
        "photos.view_label",
        "photos.view_moderationlabel",
        "photos.view_detectedtext",
        "photos.view_analysisrecord",
        "photos.view_auditevent",
        "photos.moderate_photo",
        "photos.view_moderationcase",
        "photos.view_flag",
    ],
}


def roles_ensure() -> dict[str, int]:
    """Create the groups if missing and set exactly the permissions listed above.
    Safe to run on every start."""
    result = {}
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
        result[name] = len(wanted)
    return result
