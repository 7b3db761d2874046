"""A real Celery worker (in a thread of the test process) on the real Redis broker."""

from __future__ import annotations

import pytest


@pytest.fixture
def real_celery_worker(transactional_db, settings):
    from celery.contrib.testing.worker import start_worker

    from mediaapp.celery import app

    assert not app.conf.task_always_eager, "the pipeline tests need a real worker, not eager mode"
    assert app.conf.broker_url.startswith("redis://"), app.conf.broker_url
    # Fails loudly (connection refused) when Redis is not running: no skip.
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        conn.default_channel.queue_purge("celery")
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30) as worker:
        yield worker
