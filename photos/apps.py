from django.apps import AppConfig

from infra.functions.labeler.rendition import register_decoders


class PhotosConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "photos"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from .selectors.labels import forget_thresholds

        register_decoders()  # HEIC/HEIF for Pillow, wherever the app opens an image

        for signal in (post_save, post_delete):
            signal.connect(forget_thresholds, sender="photos.ModerationSettings",
                           dispatch_uid=f"forget-thresholds-{signal is post_save}")
