"""Shared fixtures. Tests never touch the developer's media or Redis database 0:
media goes to a temporary directory, Celery to Redis database 15 (set by `make test`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_cache():
    """Cached filter choices and taxonomy must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are made by the dozen; PBKDF2's deliberate 0.3 s each is for production."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "base_url": "/media/"},
        },
    }
    settings.PHOTOS_STORAGE = "local"
    return root


class FakeQueue:
    """Records what would have been sent to the broker."""

    def __init__(self):
        self.sent: list[tuple[str, tuple]] = []
        self.options: list[tuple[str, dict]] = []  # apply_async's (time limits...)
        self.fail_with: Exception | None = None

    def task_names(self):
        return [name for name, _ in self.sent]


@pytest.fixture(autouse=True)
def fake_queue(request, monkeypatch):
    """Unless a test is marked ``real_worker``, task.delay() records instead of publishing."""
    queue = FakeQueue()
    if request.node.get_closest_marker("real_worker"):
        return queue
    from photos.pipelines.local import analyze_photo
    from photos.tasks import erase_photos, sweep_renditions, sweep_stuck_photos
    from photos.renditions import make_stills, make_stream, make_thumbnail

    for task in (analyze_photo, make_thumbnail, make_stream, make_stills, sweep_stuck_photos, sweep_renditions, erase_photos):
        def delay(*args, _name=task.name, **kwargs):
            if queue.fail_with is not None:
                raise queue.fail_with
            queue.sent.append((_name, args))
        monkeypatch.setattr(task, "delay", delay)

        def apply_async(args=(), kwargs=None, _name=task.name, **options):
            if queue.fail_with is not None:
                raise queue.fail_with
            queue.sent.append((_name, tuple(args or ())))
            queue.options.append((_name, options))
        monkeypatch.setattr(task, "apply_async", apply_async)
    return queue
