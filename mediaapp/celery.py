"""The Celery app: Redis broker from CELERY_BROKER_URL, settings under CELERY_*."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaapp.settings")

app = Celery("mediaapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _pipeline_schedule(sender, **kwargs):
    """The common beat schedule (settings) plus the configured pipeline's own tasks."""
    from photos.pipelines import periodic_tasks

    sender.conf.beat_schedule = {**sender.conf.beat_schedule, **periodic_tasks()}


def _warm_models(**kwargs):
    """Prepare each worker process after the fork (the local pipeline loads its ONNX
    models: sessions made before a fork are not safe in the child)."""
    from photos.pipelines import pipeline

    pipeline().warm()


worker_process_init.connect(_warm_models)
