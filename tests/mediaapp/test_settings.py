"""Settings come from the environment, with defaults that run on a laptop."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PHOTOS_PIPELINE", "PHOTOS_STORAGE"}}
    clean.update(env)
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "mediaapp.settings"},
        capture_output=True, text=True, timeout=60,
    )


def test_default_database_is_sqlite_in_var(tmp_path):
    result = settings_in_subprocess({"MEDIAAPP_VAR_DIR": str(tmp_path)}, "settings.DATABASES['default']['NAME']")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "db.sqlite3")
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secret_key_is_generated_once_and_kept(tmp_path):
    env = {"MEDIAAPP_VAR_DIR": str(tmp_path)}

    first = settings_in_subprocess(env, "settings.SECRET_KEY").stdout
    second = settings_in_subprocess(env, "settings.SECRET_KEY").stdout

    assert first == second and len(first.strip()) > 40


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PHOTOS_PIPELINE": "cloud"}, "PHOTOS_PIPELINE='cloud': expected one of local, aws"),
        ({"PHOTOS_STORAGE": "s3"}, "PHOTOS_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
        ({"LABEL_DISPLAY_THRESHOLD": "150"}, "LABEL_DISPLAY_THRESHOLD='150': expected 0.0..100.0"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe': expected true/false"),
    ],
)
def test_bad_settings_fail_at_start_with_a_clear_message(tmp_path, env, message):
    result = settings_in_subprocess({"MEDIAAPP_VAR_DIR": str(tmp_path), **env}, "1")

    assert result.returncode != 0
    assert message in result.stderr


def test_make_test_runs_on_postgresql():
    # `make test` sets DATABASE_URL to the local PostgreSQL; running the suite on
    # SQLite by accident would hide every PostgreSQL-specific behaviour.
    assert os.environ.get("DATABASE_URL", "").startswith("postgres"), "run the suite through `make test`"
    assert connection.vendor == "postgresql"


@pytest.mark.django_db
def test_ensure_admin_creates_one_superuser_and_keeps_the_generated_password_in_a_file(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DJANGO_ADMIN_PASSWORD", raising=False)
    out = StringIO()

    call_command("ensure_admin", stdout=out)
    call_command("ensure_admin", stdout=out)

    admins = get_user_model().objects.filter(is_superuser=True)
    assert admins.count() == 1
    path = settings.VAR_DIR / "admin-password"
    password = path.read_text().strip()
    assert admins.get().check_password(password)
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"password in {path}" in out.getvalue() and password not in out.getvalue()  # not lost in a wall of logs
    assert "already exists" in out.getvalue()


@pytest.mark.django_db
def test_ensure_admin_takes_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_ADMIN_USERNAME", "chief")
    monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "a long chosen passphrase")
    out = StringIO()

    call_command("ensure_admin", stdout=out)

    assert get_user_model().objects.get(username="chief").check_password("a long chosen passphrase")
    assert "a long chosen passphrase" not in out.getvalue()


def test_s3_storage_settings_are_private_and_never_overwrite(tmp_path):
    result = settings_in_subprocess(
        {"MEDIAAPP_VAR_DIR": str(tmp_path), "PHOTOS_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "media-bucket",
         "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
        "{**settings.STORAGES['default'], 'OPTIONS': {**settings.STORAGES['default']['OPTIONS'], "
        "'client_config': settings.STORAGES['default']['OPTIONS']['client_config'].retries}}",
    )

    assert result.returncode == 0, result.stderr
    storage = eval(result.stdout)  # a dict literal printed by the child
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "media-bucket"
    assert options["file_overwrite"] is False
    assert options["default_acl"] is None
    assert options["querystring_auth"] is True
    assert options["endpoint_url"] == "http://127.0.0.1:5000"
    assert options["client_config"] == {"mode": "standard", "max_attempts": 5}  # SlowDown and 5xx retried
    assert "access_key" not in options and "secret_key" not in options


def test_sqlite_is_set_up_for_several_writer_processes(tmp_path):
    result = settings_in_subprocess({"MEDIAAPP_VAR_DIR": str(tmp_path)}, "settings.DATABASES['default']['OPTIONS']")

    options = eval(result.stdout)
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] >= 10


def test_make_run_installs_only_the_runtime_lock_and_make_test_the_whole_one(tmp_path):
    """`make run` pulled the development lock (playwright, moto, pytest...) for minutes
    with no output (issue 12, finding 7); dry runs of both on an empty virtualenv path."""
    def dry(target: str) -> str:
        result = subprocess.run(["make", "-n", target, f"VENV={tmp_path}/venv"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run, test = dry("run"), dry("test")
    assert "-r requirements.txt" in run and "requirements-dev.txt" not in run
    assert "--quiet --no-deps --disable-pip-version-check -r requirements.txt" not in run  # progress is shown
    assert "-r requirements-dev.txt" in test


def test_serve_ends_with_one_block_saying_where_who_and_how_to_stop(settings, tmp_path, django_user_model, db):
    from photos.management.commands.serve import ready_block

    settings.VAR_DIR = tmp_path
    django_user_model.objects.create_superuser("admin", password="x")
    (tmp_path / "admin-password").write_text("x\n")

    block = ready_block("http://127.0.0.1:8000/", "a Celery worker and beat")

    lines = block.strip().splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"="}
    assert lines[1:-1] == [
        "mediaapp is running at http://127.0.0.1:8000/",
        f"Admin:    http://127.0.0.1:8000/admin/  (user admin, password in {tmp_path / 'admin-password'})",
        "Analysis: a Celery worker and beat",
        "Stop:     Ctrl-C",
    ]


def test_web_requests_run_without_postgresql_parallel_query_unless_asked(tmp_path, db, settings):
    """Parallel workers' start-up cost more than they saved on a request's short queries
    (README, the gallery at 1,000,000 photos). Set on each new connection, not as a startup
    option (PgBouncer refuses those)."""
    from photos.apps import parallel_query_setting

    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "MEDIAAPP_VAR_DIR": str(tmp_path)}
    assert settings_in_subprocess(url, "settings.POSTGRES_PARALLEL_WORKERS").stdout.strip() == "0"
    assert "options" not in settings_in_subprocess(url, "settings.DATABASES['default'].get('OPTIONS', {})").stdout
    with connection.cursor() as cursor:  # the suite's own connection (make test: PostgreSQL)
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
        settings.POSTGRES_PARALLEL_WORKERS = 2
        parallel_query_setting(sender=None, connection=connection)
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "2"
