"""`make run`: the web app plus a Celery worker with beat, in one process tree.

With Redis reachable at CELERY_BROKER_URL a real worker runs beside the web server;
without it, tasks run in-process (eager) and the command says so in one line.
Ctrl-C (or SIGTERM) stops every child cleanly; a child that dies on its own (killed, out
of memory) is restarted, and only one that keeps dying stops the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from .ensure_admin import password_file

STOP_GRACE_SECONDS = 15
# A child that dies is restarted, unless it died this many times within the window.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60


def broker_reachable(url: str) -> bool:
    if not url.startswith(("redis://", "rediss://")):
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def port_open(addr: str, port: int) -> bool:
    """Whether something accepts connections on addr:port (the web server is up)."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1" if addr in ("0.0.0.0", "") else addr, port), timeout=0.2):
            return True
    except OSError:
        return False


def ready_block(url: str, worker: str) -> str:
    """The one block a new user needs once everything is up: where, who, how to stop."""
    from django.contrib.auth import get_user_model


    from django.db import DatabaseError

    try:
        admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    except DatabaseError:  # not migrated: the block still comes, with what to do
        admin = None
    if admin is None:
        who = "no admin account yet: run `manage.py migrate` and `manage.py ensure_admin`"
    elif password_file().exists():
        who = f"user {admin.get_username()}, password in {password_file()}"
    else:
        who = f"user {admin.get_username()} (the password you chose)"
    lines = [f"mediaapp is running at {url}", f"Admin:    {url}admin/  ({who})", f"Analysis: {worker}",
             "Stop:     Ctrl-C"]
    rule = "=" * max(len(line) for line in lines)
    return "\n".join(["", rule, *lines, rule, ""])


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("ADDR", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "2")))

    def handle(self, *args, addr, port, concurrency, **options):
        env = dict(os.environ)
        commands: dict[str, list[str]] = {}
        url = settings.CELERY_BROKER_URL
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("Tasks run in-process (CELERY_TASK_ALWAYS_EAGER=1).")
        elif broker_reachable(url):
            schedule = settings.VAR_DIR / "celerybeat-schedule"
            commands["worker"] = [sys.executable, "-m", "celery", "-A", "mediaapp",
                                  "--quiet",  # no banner: the ready block below is the one to read
                                  "worker", "--beat", "--schedule", str(schedule), "--loglevel", "INFO",
                                  "--concurrency", str(concurrency)]
            self.stdout.write(f"Celery worker ({concurrency} processes) and beat running on {url}.")
        else:
            env["CELERY_TASK_ALWAYS_EAGER"] = "1"
            self.stdout.write(
                f"Redis is not reachable at {url}: tasks run in-process, so an upload waits for its analysis "
                "and the periodic tasks (stuck-photo sweeper, trash purge) do not run. Start Redis for a real worker."
            )
        commands["web"] = [sys.executable, "manage.py", "runserver", f"{addr}:{port}", "--noreload"]
        worker = ("a Celery worker and beat" if "worker" in commands
                  else "tasks in-process (eager)" if settings.CELERY_TASK_ALWAYS_EAGER else "tasks in-process (no Redis)")

        def start(name: str) -> subprocess.Popen:
            return subprocess.Popen(commands[name], env=env, cwd=settings.BASE_DIR)

        children = {name: start(name) for name in commands}
        announced = False
        exits: dict[str, list[float]] = {name: [] for name in commands}
        stopping = False
        failure = None

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                time.sleep(0.3)
                if not announced and port_open(addr, int(port)):
                    # Once the web server answers, however long it took: the one block to read.
                    self.stdout.write(ready_block(f"http://{addr}:{port}/", worker))
                    self.stdout.flush()
                    announced = True
                for name, child in list(children.items()):
                    if child.poll() is None or stopping:
                        continue
                    # A child that died (killed, out of memory) is restarted; one that keeps
                    # dying is a real failure, and everything stops with its exit code.
                    now = time.monotonic()
                    exits[name] = [t for t in exits[name] if now - t < RESTART_WINDOW_SECONDS] + [now]
                    if len(exits[name]) > MAX_RESTARTS:
                        failure = (name, child.returncode)
                        stopping = True
                        break
                    self.stderr.write(f"The {name} process exited with {child.returncode}; restarting it.")
                    children[name] = start(name)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        if failure:
            self.stderr.write(f"The {failure[0]} process exited {MAX_RESTARTS + 1} times within "
                              f"{RESTART_WINDOW_SECONDS} s (last code {failure[1]}); stopped the rest.")
            sys.exit(1)
