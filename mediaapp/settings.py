"""Settings, all from the environment, with embedded defaults that run on a laptop.

Every variable is listed in README.md ("Configuration"). Defaults: SQLite in
``var/``, local media, the local detector, DEBUG off unless DJANGO_DEBUG=1.
"""

from __future__ import annotations

import os
from datetime import timedelta
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MEDIAAPP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected true/false")


def env_float(name: str, default: float, *, lo: float = 0.0, hi: float = 100.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if not lo <= value <= hi:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected {lo}..{hi}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    # No key given: make one once and keep it in var/, so sessions survive restarts
    # without anyone committing a key or running with a well-known one.
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "storages",
    "axes",
    # Swagger UI's own files, served from this site for /api/docs/ (no CDN; the CSP
    # allows scripts from 'self' only). Only its static files are used: no DRF.
    "drf_spectacular_sidecar",
    "photos",
]

# Login throttling: django-axes, locking a username *from one address* after
# LOGIN_MAX_FAILURES failures (the pair, so nobody elsewhere can lock a user out of their
# own account, and one address behind a proxy is not everybody). Superusers see and lift
# lockouts in the admin (Axes: access attempts) or with `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "photos.security.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "photos.security.ContentSecurityPolicyMiddleware",
    "photos.api.JsonErrorsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
    "photos.security.LoginAddressRateMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mediaapp.urls"
# A refused CSRF check answers API clients in JSON and people with the site's page.
CSRF_FAILURE_VIEW = "photos.api.csrf_failure"
WSGI_APPLICATION = "mediaapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# PostgreSQL's parallel query costs ~20 ms of worker start-up per query on a small machine,
# more than it saves on a web request's short, LIMITed queries (1,000,000 photos, README:
# the API's most relevant search 112 -> 68 ms, the gallery's page 20 of a label 62 -> 19).
# Each new connection sets it (photos/apps.py; a SET, not a startup option, which PgBouncer
# refuses); background jobs that scan (the public label recount) ask for workers themselves.
POSTGRES_PARALLEL_WORKERS = int(env_float("POSTGRES_PARALLEL_WORKERS", 0, lo=0, hi=64))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` has a web server and worker processes writing to one SQLite file:
    # WAL lets readers and the writer overlap; IMMEDIATE transactions take the write
    # lock up front (a deferred one that upgrades fails at once with "database is
    # locked" instead of waiting); the timeout lets writers queue.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_SECURE = not DEBUG and env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS outside debug (browsers honour it only over HTTPS): a year, no subdomains or
# preload unless the operator opts in.
SECURE_HSTS_SECONDS = 0 if DEBUG else int(env_float("DJANGO_HSTS_SECONDS", 31_536_000, lo=0, hi=63_072_000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)

# --- the photo pipeline ---------------------------------------------------------
PHOTOS_PIPELINE = env_choice("PHOTOS_PIPELINE", "local", ("local", "aws"))
PHOTOS_STORAGE = env_choice("PHOTOS_STORAGE", "local", ("local", "s3"))
AWS_REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL") or None
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
LABELS_TABLE_NAME = os.environ.get("LABELS_TABLE_NAME", "")
# The labeler's SQS queue (stack output LabelerQueueUrl): re-analysis sends it an
# S3-event-shaped message instead of rewriting the object.
LABELER_QUEUE_URL = os.environ.get("LABELER_QUEUE_URL", "")
# The backfill's own queue (stack output BackfillQueueUrl): analyse_bucket sends there, so
# live uploads never wait behind a backfill.
LABELER_BACKFILL_QUEUE_URL = os.environ.get("LABELER_BACKFILL_QUEUE_URL", "")
# Its dead-letter queue (stack output DeadLetterQueueUrl): `manage.py redrive_dead_letters`.
LABELER_DLQ_URL = os.environ.get("LABELER_DLQ_URL", "")
LABELER_BACKFILL_DLQ_URL = os.environ.get("LABELER_BACKFILL_DLQ_URL", "")
# Paths to extra Ultralytics YOLO ONNX exports for general labels (see docs/local-detector.md).
# Same rule as photos.analysis.client.label_model_paths_from_env (which the settings
# cannot import: it loads onnxruntime): ':' or ',' separated.
LOCAL_LABEL_MODELS = [
    p.strip() for p in os.environ.get("LOCAL_LABEL_MODELS", "").replace(",", os.pathsep).split(os.pathsep) if p.strip()
]

# Thresholds are applied when displaying and flagging, never when storing.
LABEL_DISPLAY_THRESHOLD = env_float("LABEL_DISPLAY_THRESHOLD", 70.0)
MODERATION_FLAG_THRESHOLD = env_float("MODERATION_FLAG_THRESHOLD", 80.0)

# Uploads: limits read by the upload form at run time.
PHOTOS_MAX_UPLOAD_BYTES = int(env_float("PHOTOS_MAX_UPLOAD_BYTES", 25 * 1024 * 1024, lo=1, hi=1024**3))
PHOTOS_MAX_PIXELS = int(env_float("PHOTOS_MAX_PIXELS", 50_000_000, lo=1, hi=500_000_000))
# Videos (issue 21): how large, long and detailed an upload may be. 1 GiB holds about 10
# minutes of a phone's 1080p; 15 minutes; 4096 x 2304 (4K DCI) a frame.
PHOTOS_MAX_VIDEO_BYTES = int(env_float("PHOTOS_MAX_VIDEO_BYTES", 1024**3, lo=1, hi=50 * 1024**3))
PHOTOS_MAX_VIDEO_SECONDS = env_float("PHOTOS_MAX_VIDEO_SECONDS", 15 * 60, lo=1, hi=6 * 3600)
PHOTOS_MAX_VIDEO_PIXELS = int(env_float("PHOTOS_MAX_VIDEO_PIXELS", 4096 * 2304, lo=1, hi=100_000_000))
# S3 storage: a video goes from the browser straight to the bucket in parts of this size
# (S3's minimum is 5 MiB, except the last; larger for a file 10,000 parts would not hold).
PHOTOS_MULTIPART_PART_BYTES = int(env_float("PHOTOS_MULTIPART_PART_BYTES", 16 * 1024**2, lo=5 * 1024**2, hi=5 * 1024**3))
# A video's analysis looks at one frame every PHOTOS_VIDEO_SAMPLE_MS (and at scene cuts),
# at most PHOTOS_VIDEO_MAX_FRAMES frames (spread wider over a long video).
PHOTOS_VIDEO_SAMPLE_MS = int(env_float("PHOTOS_VIDEO_SAMPLE_MS", 1000, lo=100, hi=600_000))
PHOTOS_VIDEO_MAX_FRAMES = int(env_float("PHOTOS_VIDEO_MAX_FRAMES", 120, lo=1, hi=10_000))
# Rekognition analyses images of at least 80 px a side; smaller ones are refused at upload.
PHOTOS_MIN_SIDE = int(env_float("PHOTOS_MIN_SIDE", 80, lo=1, hi=10_000))
PHOTOS_MAX_FILES_PER_UPLOAD = int(env_float("PHOTOS_MAX_FILES_PER_UPLOAD", 20, lo=1, hi=1000))
# Big uploads spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

if PHOTOS_STORAGE == "s3":
    from botocore.config import Config as _BotoConfig

    # Credentials come from boto3's default chain (role, profile, environment), never
    # from settings. Objects are private; pages get short-lived presigned URLs.
    # botocore's standard retry mode: every throttle code (S3's SlowDown) and 5xx is
    # retried with backoff, up to 5 attempts (the legacy default retries fewer codes).
    _s3_addressing = os.environ.get("AWS_S3_ADDRESSING_STYLE") or None
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "region_name": AWS_REGION,
            "endpoint_url": AWS_ENDPOINT_URL,
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": int(env_float("AWS_QUERYSTRING_EXPIRE", 300, lo=1, hi=604800)),
            "signature_version": "s3v4",
            "addressing_style": _s3_addressing,
            "client_config": _BotoConfig(s3={"addressing_style": _s3_addressing}, signature_version="s3v4",
                                         retries={"mode": "standard", "max_attempts": 5}),
            "object_parameters": {"CacheControl": "private, max-age=300"},
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": f"/{MEDIA_URL}"},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Analysis tasks are long and uneven: one at a time per worker process.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An upload must not hang when Redis is down: fail the publish fast, the sweeper
# enqueues the photo later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
    # acks_late tasks are redelivered after this; it must exceed the hard time limit.
    "visibility_timeout": 3600,
}
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-photos": {"task": "photos.tasks.sweep_stuck_photos", "schedule": 60.0},
    "sweep-renditions": {"task": "photos.tasks.sweep_renditions", "schedule": 300.0},
    "purge-trash": {"task": "photos.tasks.purge_trash", "schedule": 3600.0},
    # The erasure outbox: files of erased photos that storage has not let go of yet.
    "finish-erasures": {"task": "photos.tasks.finish_erasures", "schedule": 300.0},
    # The gallery's search suggestions: labels of public photos, with their counts.
    "count-public-labels": {"task": "photos.tasks.count_public_labels", "schedule": 600.0},
}
# DynamoDB -> Django sync (PHOTOS_PIPELINE=aws): how often, and how far back each run
# re-reads, because the sync index is eventually consistent and records are written a
# little after their updated_at.
SYNC_INTERVAL_SECONDS = env_float("SYNC_INTERVAL_SECONDS", 30, lo=1, hi=3600)
SYNC_OVERLAP_SECONDS = env_float("SYNC_OVERLAP_SECONDS", 120, lo=0, hi=86400)
SYNC_PARALLEL_SHARDS = int(env_float("SYNC_PARALLEL_SHARDS", 2, lo=1, hi=64))
# The pipeline adds its own periodic tasks (the AWS sync): mediaapp/celery.py.
# A photo still uploaded/queued after this many seconds is re-enqueued by the sweeper.
PHOTOS_STUCK_AFTER_SECONDS = int(env_float("PHOTOS_STUCK_AFTER_SECONDS", 120, lo=1, hi=86400))
# In AWS a photo may legitimately wait longer: the labeler backs a throttled message off
# for 30 s, 60 s, 120 s, 240 s (7.5 min over its 5 receives) before the DLQ. Waiting longer
# than that with no record, the sweep sends it to the labeler again (at most 3 times).
AWS_STUCK_AFTER_SECONDS = int(env_float("AWS_STUCK_AFTER_SECONDS", 1200, lo=60, hi=7 * 86400))
# A video's: its jobs may wait hours for the concurrent-jobs quota (infra/resources.py).
AWS_VIDEO_STUCK_AFTER_SECONDS = int(env_float("AWS_VIDEO_STUCK_AFTER_SECONDS", 6 * 3600, lo=60, hi=7 * 86400))

# Login rate limiting (photos.security): failures per address and per username.
# A report hides a photo only on evidence: a staff member's, or this many distinct
# reporters whose accounts are at least REPORTER_MIN_ACCOUNT_HOURS old. Other reports put
# the photo in the moderation queue while it stays visible.
REPORTS_TO_HIDE = int(env_float("REPORTS_TO_HIDE", 3, lo=1, hi=1000))
REPORTER_MIN_ACCOUNT_HOURS = env_float("REPORTER_MIN_ACCOUNT_HOURS", 24, lo=0, hi=24 * 365)
LOGIN_MAX_FAILURES = int(env_float("LOGIN_MAX_FAILURES", 5, lo=1, hi=1000))
LOGIN_WINDOW_SECONDS = int(env_float("LOGIN_WINDOW_SECONDS", 900, lo=1, hi=86400))
AXES_FAILURE_LIMIT = LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "photos.security.client_ip"
AXES_VERBOSE = False

# Abuse limits (django-ratelimit; per process unless REDIS_CACHE_URL gives a shared
# cache): sign-ups per address, reports and upload requests per account.
RATELIMIT_VIEW = "photos.security.rate_limited"
RATELIMIT_IP_META_KEY = "photos.security.client_ip"
SIGNUP_RATE = os.environ.get("SIGNUP_RATE", "5/h")
REPORT_RATE = os.environ.get("REPORT_RATE", "30/h")
UPLOAD_RATE = os.environ.get("UPLOAD_RATE", "120/h")
LOGIN_ADDRESS_RATE = os.environ.get("LOGIN_ADDRESS_RATE", "60/h")
PASSWORD_RESET_RATE = os.environ.get("PASSWORD_RESET_RATE", "5/h")
TRUSTED_PROXY_COUNT = int(env_float("TRUSTED_PROXY_COUNT", 0, lo=0, hi=10))
# AGPL-3.0 section 13: every page's footer offers the source of the running copy. Empty:
# the site serves its own source at /source/; set a URL where you publish a modified copy.
SOURCE_CODE_URL = os.environ.get("SOURCE_CODE_URL", "")
# Extra origins pages may load media from or post to (a CDN in front of the bucket, say).
# The storage's own host needs no entry: the policy adds the origins of the URLs the
# storage really signs (photos/pipelines/storage.py).
CSP_MEDIA_ORIGINS = [o.strip() for o in os.environ.get("CSP_MEDIA_ORIGINS", "").split(",") if o.strip()]

# Password reset mails go to the console unless an SMTP server is configured.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env_float("EMAIL_PORT", 25, lo=1, hi=65535))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mediaapp <noreply@localhost>")

# Cache: the Redis broker's server by default when REDIS_CACHE_URL is set, else memory.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_CACHE_URL"]}
        if os.environ.get("REDIS_CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Requests: forms other than file uploads stay small; uploads are checked per file.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 100

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "photos:mine"
LOGOUT_REDIRECT_URL = "login"

if PHOTOS_STORAGE == "s3" and not AWS_STORAGE_BUCKET_NAME:
    raise ImproperlyConfigured("PHOTOS_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
if PHOTOS_PIPELINE == "aws" and not LABELS_TABLE_NAME:
    raise ImproperlyConfigured("PHOTOS_PIPELINE=aws needs LABELS_TABLE_NAME")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
