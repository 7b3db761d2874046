"""The Celery app: Redis broker from CELERY_BROKER_URL, settings under CELERY_*."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaapp.settings")

app = Celery("mediaapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _warm_models(**kwargs):
    """Load the ONNX models in each worker process after the fork (sessions made before
    a fork are not safe to use in the child), so the first photo is not slow."""
    from django.conf import settings

    if settings.PHOTOS_PIPELINE == "local":
        from photos.services import local_rekognition

        local_rekognition().warm()


worker_process_init.connect(_warm_models)
