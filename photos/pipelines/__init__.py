"""Everything that differs between running locally and in AWS, chosen once from
settings: ``PHOTOS_PIPELINE`` names the analysis pipeline (local: the Celery worker and
the local detector; aws: S3 events, the labeler Lambda and the DynamoDB sync) and
``PHOTOS_STORAGE`` the media storage (local disk or S3). Everything else asks
``pipeline()`` and ``media_storage()`` and never branches on either setting.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings

from .base import Pipeline, PipelineUnsupported
from .storage import LocalMediaStorage, StorageUnsupported, media_storage

__all__ = ["LocalMediaStorage", "Pipeline", "PipelineUnsupported", "StorageUnsupported", "media_storage",
           "periodic_tasks", "pipeline"]


def pipeline() -> Pipeline:
    """The pipeline ``PHOTOS_PIPELINE`` names (one instance per name)."""
    return _build(settings.PHOTOS_PIPELINE)


@cache
def _build(name: str) -> Pipeline:
    # Here, not at the top: the implementations import the models, and this package is
    # imported by the Celery app's configuration (periodic_tasks), before Django's apps.
    from .aws import AwsPipeline
    from .local import LocalPipeline

    return {"local": LocalPipeline, "aws": AwsPipeline}[name]()


def periodic_tasks() -> dict[str, dict[str, Any]]:
    """Celery beat entries the configured pipeline needs besides the common ones: the
    AWS pipeline pulls records from DynamoDB, and checks once a day that no erased key
    kept a version in the bucket. Read before Django's apps are loaded."""
    if settings.PHOTOS_PIPELINE == "aws":
        return {"sync-labels": {"task": "photos.tasks.sync_labels", "schedule": settings.SYNC_INTERVAL_SECONDS},
                "check-erasures": {"task": "photos.tasks.check_erasures", "schedule": 86400.0}}
    return {}
