# One photo per owner and content hash (issue #10: concurrent uploads stored copies).

from django.conf import settings
from django.db import migrations, models


def forget_hash_of_later_copies(apps, schema_editor):
    """Before the constraint: where an owner already has several copies of one file (the
    upload race this constraint closes stored some), keep every copy and its file, and
    clear the content hash of all but the oldest, so the oldest is the one duplicates are
    reported against. Nothing is deleted."""
    Photo = apps.get_model("photos", "Photo")
    from django.db.models import Count

    groups = (Photo.objects.exclude(sha256="").filter(owner__isnull=False)
              .values("owner_id", "sha256").annotate(n=Count("id")).filter(n__gt=1))
    for group in groups:
        copies = Photo.objects.filter(owner_id=group["owner_id"], sha256=group["sha256"]).order_by("created_at", "id")
        Photo.objects.filter(pk__in=list(copies.values_list("pk", flat=True)[1:])).update(sha256="")


class Migration(migrations.Migration):

    dependencies = [
        ('photos', '0007_delete_action'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(forget_hash_of_later_copies, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='photo',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', False), models.Q(('sha256', ''), _negated=True)), fields=('owner', 'sha256'), name='photo_unique_per_owner'),
        ),
    ]
