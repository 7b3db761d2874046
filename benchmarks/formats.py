"""Benchmark: local analysis of a phone's HEIC against the same photo as JPEG.

    make bench-formats                  # or: .venv/bin/python -m benchmarks.formats

One 12 MP photo (Grace Hopper, enlarged, with film grain so it compresses like a phone's),
encoded as a JPEG (quality 90) and as an HEIC (pillow-heif quality 55: about 0.6x the JPEG's
size, as an iPhone's HEIC is). Each round analyses both, in alternating order, with ``photo_analyze``, the
worker's whole analysis: the JPEG goes to the detector as stored; the HEIC goes through the
Lambda's analysis rendition first (decoded by pi-heif, shrunk to 4,096 px, JPEG). The
target (issue 18): HEIC within 1.3x the JPEG. Embedded SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import atexit
import io
import shutil
import statistics
import sys
import tempfile
import time

from benchmarks import django_env

VAR_DIR = tempfile.mkdtemp(prefix="mediaapp-bench-formats-")
atexit.register(shutil.rmtree, VAR_DIR, ignore_errors=True)
django_env.start(None, MEDIAAPP_VAR_DIR=VAR_DIR, CELERY_TASK_ALWAYS_EAGER="1")

# Django is set up above: the app's modules import from here on.
import numpy as np  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from PIL import Image  # noqa: E402

from photos.models import Label, Photo  # noqa: E402
from photos.pipelines.local import local_rekognition, photo_analyze  # noqa: E402
from tests.samples import PHOTOS, encode, heic  # noqa: E402


def twelve_megapixels() -> Image.Image:
    img = Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((3024, 4032), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(7)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-5, 6, size=(4032, 3024, 3), dtype=np.int16)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def analyse(photo: Photo) -> float:
    Label.objects.filter(photo=photo).delete()
    Photo.objects.filter(id=photo.id).update(status=Photo.Status.QUEUED, analysis_attempts=0)
    local_rekognition().clear_cache()  # the detector keeps each image's work for its three calls
    started = time.perf_counter()
    photo_analyze(photo_id=photo.id)
    seconds = time.perf_counter() - started
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED, (photo.key, photo.status, photo.status_reason)
    return seconds


def decode_seconds(data: bytes) -> float:
    """Only the full decode of the HEIC (the floor: HEVC has nothing like JPEG's DCT
    scaling, which lets the JPEG be decoded at 1/8 of its size)."""
    started = time.perf_counter()
    Image.open(io.BytesIO(data)).load()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    owner = get_user_model().objects.create_user("bench-formats", password="x")
    img = twelve_megapixels()
    photos = {}
    heif_bytes = heic(img, quality=55)  # about 0.6x the JPEG's size, as an iPhone's HEIC is
    for name, data in (("photo.jpg", encode(img, "JPEG", quality=90)), ("photo.heic", heif_bytes)):
        photo = Photo(owner=owner, original_filename=name, size=len(data), status=Photo.Status.QUEUED)
        photo.image.save(name, ContentFile(data))
        photos[name] = photo
    for photo in photos.values():  # warm: models loaded, first-call costs paid
        analyse(photo)
    times = {name: [] for name in photos}
    decodes = []
    for round_ in range(args.rounds):
        order = list(photos) if round_ % 2 == 0 else list(reversed(photos))
        for name in order:
            times[name].append(analyse(photos[name]))
        decodes.append(decode_seconds(heif_bytes))
    jpeg, heif = statistics.median(times["photo.jpg"]), statistics.median(times["photo.heic"])
    print(f"12 MP photo, {args.rounds} rounds, medians (min-max):")
    for name, photo in photos.items():
        print(f"  {name:11} {photo.size / 2**20:5.1f} MB  {statistics.median(times[name]):6.3f} s "
              f"({min(times[name]):.3f}-{max(times[name]):.3f})")
    print(f"  of which the HEIC's full decode alone: {statistics.median(decodes):.3f} s")
    print(f"HEIC / JPEG: {heif / jpeg:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
