"""Create the first superuser if there is none, for `make run` on a fresh machine."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists. Credentials come from DJANGO_ADMIN_USERNAME, "
        "DJANGO_ADMIN_PASSWORD and DJANGO_ADMIN_EMAIL; without a password one is generated "
        "and kept in var/admin-password (readable by you only), where `make run` points."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("DJANGO_ADMIN_USERNAME") or "admin"
        with transaction.atomic():
            existing = User.objects.filter(is_superuser=True).order_by("pk").first()
            if existing is not None:
                self.stdout.write(f"Admin account: {existing.get_username()} (already exists; password unchanged)")
                return
            password = os.environ.get("DJANGO_ADMIN_PASSWORD")
            generated = not password
            if generated:
                password = secrets.token_urlsafe(12)
            User.objects.create_superuser(
                username=username,
                email=os.environ.get("DJANGO_ADMIN_EMAIL", ""),
                password=password,
            )
        if generated:
            path = password_file()
            path.unlink(missing_ok=True)
            # Created readable by its owner only, never for a moment by anyone else.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                handle.write(password + "\n")
            self.stdout.write(self.style.SUCCESS(
                f"Created admin account: username={username}, password in {path} (set DJANGO_ADMIN_PASSWORD to choose it)"))
        else:
            self.stdout.write(self.style.SUCCESS(f"Created admin account: username={username} (password from DJANGO_ADMIN_PASSWORD)"))


def password_file():
    """Where a generated first admin password is kept (the var directory, like the secret key)."""
    from django.conf import settings

    return settings.VAR_DIR / "admin-password"
