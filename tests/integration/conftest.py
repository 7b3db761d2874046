from tests.workers import real_celery_worker  # noqa: F401  (fixture)
