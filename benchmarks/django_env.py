"""Django for a benchmark script, started before the script's own Django imports.

A benchmark is a script (``python -m benchmarks.NAME``): it imports this module first,
calls ``start`` at its top with its own database, and then imports the models and the app
at module level like any other module, so no import hides inside a function.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(database_url: str) -> None:
    """Create a benchmark's PostgreSQL database if it is missing (its own: never the
    developer's or the tests')."""
    import psycopg  # only the PostgreSQL benchmarks need it; SQLite ones run without

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start(database_url: str | None = None, **environ: str) -> None:
    """Point Django at ``database_url`` (created if missing; None keeps DATABASE_URL or
    the embedded SQLite), set ``environ``, set Django up and migrate."""
    if database_url:
        if database_url.startswith("postgres"):
            ensure_database(database_url)
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(environ)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaapp.settings")
    os.environ.setdefault("MEDIAAPP_VAR_DIR", "/tmp/mediaapp-bench-var")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
