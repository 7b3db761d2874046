from django.core.management.base import BaseCommand

from photos.roles import roles_ensure


class Command(BaseCommand):
    help = "Create the Editors and Moderators groups with their permissions (idempotent)."

    def handle(self, *args, **options):
        for name, count in roles_ensure().items():
            self.stdout.write(f"Group {name}: {count} permissions")
