"""Benchmark: the local pipeline as a user meets it.

    make bench-pipeline                 # or: .venv/bin/python -m benchmarks.pipeline

Measures, on embedded defaults (SQLite in a temporary directory, local media; pass
DATABASE_URL to use PostgreSQL) with the real Redis broker (database 14):

1. the upload request with a ~5 MB JPEG: the whole Django stack (multipart parsing,
   validation, storage write, row insert, enqueue on commit); analysis is off the
   request path, so no worker runs during this part;
2. upload -> labels visible on "My photos" (the status JSON the page polls) with an idle
   real Celery worker process, for a typical photo and for the 5 MB one;
3. the admin photo changelist's query count at page sizes 10, 50 and 100.
"""

from __future__ import annotations

import argparse
import atexit
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks import django_env

VAR_DIR = tempfile.mkdtemp(prefix="mediaapp-bench-")
atexit.register(shutil.rmtree, VAR_DIR, ignore_errors=True)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
django_env.start(None, MEDIAAPP_VAR_DIR=VAR_DIR, CELERY_TASK_ALWAYS_EAGER="0",
                 DJANGO_ALLOWED_HOSTS="testserver,localhost,127.0.0.1")

# Django is set up above: the app's modules import from here on.
import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from mediaapp.celery import app  # noqa: E402
from photos.admin import PhotoAdmin  # noqa: E402
from photos.models import Label, Photo  # noqa: E402
from tests.samples import PHOTOS, photo_bytes  # noqa: E402

ROOT = django_env.ROOT


def five_megabyte_jpeg() -> bytes:
    img = Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC)
    # Film-grain noise gives the JPEG the entropy of a real 12 MP phone photo.
    rng = np.random.default_rng(7)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-24, 25, size=(4000, 3000, 3), dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def purge_queue() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        conn.default_channel.queue_purge("celery")


_serial = iter(range(10**9))


def upload_once(client, name: str, data: bytes, content_type: str = "image/jpeg") -> tuple[float, object]:
    # A few bytes after the image's end make every upload distinct: the same bytes
    # twice would be refused as a duplicate.
    data = data + f"\x00bench{next(_serial)}".encode()
    started = time.perf_counter()
    response = client.post("/photos/", {"photos": SimpleUploadedFile(name, data, content_type)})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    return elapsed, Photo.objects.order_by("-id").first()


def bench_upload_requests(client, data: bytes, n: int) -> list[float]:
    purge_queue()
    times = [upload_once(client, f"big{i}.jpg", data)[0] for i in range(n + 1)][1:]  # first one warms up
    purge_queue()
    return times


def distinct_photos(n: int) -> list[bytes]:
    """n different ~1 MP JPEGs (a sample photo with a different mark each), so duplicate
    detection does not refuse them."""
    base = Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((1200, 900))
    out = []
    for i in range(n):
        img = base.copy()
        ImageDraw.Draw(img).rectangle((i % 1100, 10, i % 1100 + 40, 50), fill=(i % 255, 80, 160))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def bench_sustained_uploads(client, n: int) -> float:
    purge_queue()
    photos = distinct_photos(n + 5)
    for i in range(5):  # warm-up
        upload_once(client, f"warm{i}.jpg", photos[i])
    started = time.perf_counter()
    for i in range(5, n + 5):
        upload_once(client, f"s{i}.jpg", photos[i])
    elapsed = time.perf_counter() - started
    purge_queue()
    return n / elapsed


def start_worker() -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mediaapp", "worker", "--concurrency", "1", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "ready." in line:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
    # Keep draining its output so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc


def bench_upload_to_labels(client, name: str, data: bytes, content_type: str, n: int) -> list[float]:
    times = []
    for i in range(n + 1):
        started = time.perf_counter()
        _, photo = upload_once(client, f"{i}-{name}", data, content_type)
        while True:
            status = client.get("/photos/status/", {"ids": str(photo.uid)}).json()["photos"][0]
            if not status["pending"]:
                break
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"photo {photo.uid} not analysed within 60 s: {status}")
            time.sleep(0.02)
        assert status["status"] == "labeled", status
        times.append(time.perf_counter() - started)
        time.sleep(0.3)  # let the thumbnail task finish: the worker is idle for the next one
    return times[1:]


def bench_changelist_queries() -> dict[int, int]:
    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser("bench-admin", password="x")
    owner = User.objects.create_user(f"bench-owner-{time.time_ns()}", password="x")
    photos = Photo.objects.bulk_create(
        [Photo(owner=owner, image=f"uploads/bench/{time.time_ns()}-{i}.jpg", original_filename=f"{i}.jpg", status="labeled") for i in range(100)]
    )
    Label.objects.bulk_create([Label(photo=p, name=n, confidence=80.0) for p in photos for n in ("Dog", "Grass", "Face", "Text")])
    client = Client()
    client.force_login(admin)
    counts = {}
    original = PhotoAdmin.list_per_page
    try:
        for size in (10, 50, 100):
            PhotoAdmin.list_per_page = size
            client.get("/admin/photos/photo/")
            with CaptureQueriesContext(connection) as ctx:
                assert client.get("/admin/photos/photo/").status_code == 200
            counts[size] = len(ctx)
    finally:
        PhotoAdmin.list_per_page = original
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=15)
    parser.add_argument("--analyses", type=int, default=10)
    parser.add_argument("--sustained", type=int, default=60)
    args = parser.parse_args(argv)

    print(f"database: {connection.vendor}; storage: {settings.PHOTOS_STORAGE}; broker: {settings.CELERY_BROKER_URL}")
    user = get_user_model().objects.create_user("bench", password="x")
    client = Client()
    client.force_login(user)

    big = five_megabyte_jpeg()
    times = bench_upload_requests(client, big, args.uploads)
    print(f"\n== upload request, {len(big) / 1e6:.1f} MB JPEG (3000x4000), {args.uploads} uploads")
    print(f"median {statistics.median(times) * 1000:.0f} ms, p95 {percentile(times, 95) * 1000:.0f} ms")

    sizes = statistics.median(len(p) for p in distinct_photos(3)) / 1e6
    rate = bench_sustained_uploads(client, args.sustained)
    print(f"\n== sustained uploads, {args.sustained} different 1.1 MP JPEGs (~{sizes:.2f} MB) back to back, analysis queued")
    print(f"{rate:.1f} photos/s")

    worker = start_worker()
    try:
        for label, name, data, ctype in (
            ("grace_hopper.jpg (512x600, 62 KB)", "grace.jpg", photo_bytes("grace_hopper"), "image/jpeg"),
            ("astronaut.png (512x512, 792 KB)", "astronaut.png", photo_bytes("astronaut"), "image/png"),
            (f"{len(big) / 1e6:.1f} MB JPEG (3000x4000)", "big.jpg", big, "image/jpeg"),
        ):
            times = bench_upload_to_labels(client, name, data, ctype, args.analyses)
            print(f"\n== upload -> labels visible, idle worker, {label}, {args.analyses} photos")
            print(f"median {statistics.median(times) * 1000:.0f} ms, p95 {percentile(times, 95) * 1000:.0f} ms")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        purge_queue()

    counts = bench_changelist_queries()
    print("\n== admin photo changelist, queries per page")
    print(", ".join(f"{size} per page: {n}" for size, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
