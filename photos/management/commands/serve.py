"""`make run`: the web app plus a Celery worker with beat, in one process tree.

With Redis reachable at CELERY_BROKER_URL a real worker runs beside the web server;
without it, tasks run in-process (eager) and the command says so in one line.
Ctrl-C (or SIGTERM) stops every child cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 15


def broker_reachable(url: str) -> bool:
    if not url.startswith(("redis://", "rediss://")):
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("ADDR", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "2")))

    def handle(self, *args, addr, port, concurrency, **options):
        env = dict(os.environ)
        children: list[subprocess.Popen] = []
        url = settings.CELERY_BROKER_URL
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("Tasks run in-process (CELERY_TASK_ALWAYS_EAGER=1).")
        elif broker_reachable(url):
            schedule = settings.VAR_DIR / "celerybeat-schedule"
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "mediaapp", "worker", "--beat", "--schedule", str(schedule),
                     "--loglevel", "INFO", "--concurrency", str(concurrency)],
                    env=env,
                )
            )
            self.stdout.write(f"Celery worker ({concurrency} processes) and beat running on {url}.")
        else:
            env["CELERY_TASK_ALWAYS_EAGER"] = "1"
            self.stdout.write(
                f"Redis is not reachable at {url}: tasks run in-process, so an upload waits for its analysis "
                "and the stuck-photo sweeper does not run. Start Redis for a real worker."
            )
        children.append(
            subprocess.Popen([sys.executable, "manage.py", "runserver", f"{addr}:{port}", "--noreload"], env=env,
                             cwd=settings.BASE_DIR)
        )
        self.stdout.write(f"Web app on http://{addr}:{port}/ (admin at /admin/). Ctrl-C stops everything.")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.3)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            self.stderr.write(f"A child process exited with {failed[0].returncode}; stopped the rest.")
            sys.exit(1)
