from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created

from infra.functions.labeler.rendition import register_decoders


class PhotosConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "photos"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from .selectors.labels import forget_thresholds

        register_decoders()  # HEIC/HEIF for Pillow, wherever the app opens an image
        connection_created.connect(parallel_query_setting, dispatch_uid="photos-parallel-query")
        for signal in (post_save, post_delete):
            signal.connect(forget_thresholds, sender="photos.ModerationSettings",
                           dispatch_uid=f"forget-thresholds-{signal is post_save}")


def parallel_query_setting(sender, connection, **kwargs):
    """Every new PostgreSQL connection of the app gets max_parallel_workers_per_gather from
    settings.POSTGRES_PARALLEL_WORKERS (mediaapp/settings.py says why 0). A SET, not a
    startup option: PgBouncer refuses unknown startup parameters."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = %s", [int(settings.POSTGRES_PARALLEL_WORKERS)])
