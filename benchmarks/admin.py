"""Benchmark: the editors' and moderators' admin at scale.

    make bench-admin        # or: .venv/bin/python -m benchmarks.admin
    make bench-admin BENCH_ARGS="--photos 1000000 --skip-admin"   # the gallery at 1M photos

Seeds (once; reused by later runs) --photos photos (100,000 by default) with 10 labels each
into a dedicated PostgreSQL database (BENCH_ADMIN_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/mediaapp_admin_bench, or mediaapp_admin_bench_<N> for
another size; created if missing) with COPY, prints the seeding time and the database's
size, then, through the whole Django stack (test client, superuser session):
- times the review queue, the moderation queue and photo changelists with the filters
  and searches editors use: median and p95 over --repeat requests, and their query counts;
- times a bulk approve of 1,000 labels (photos.review.labels_decide), median of 5;
- times one site user's "My photos" over 10,000 of their photos: page 1 and page 50
  (keyset pagination: the same cost and query count).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid

from benchmarks import django_env

_SIZE = argparse.ArgumentParser(add_help=False)
_SIZE.add_argument("--photos", type=int, default=100_000)
PHOTOS = _SIZE.parse_known_args()[0].photos
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mediaapp_admin_bench" + ("" if PHOTOS == 100_000 else f"_{PHOTOS}")
django_env.start(os.environ.get("BENCH_ADMIN_DATABASE_URL", DEFAULT_DB), DJANGO_ALLOWED_HOSTS="testserver")

# Django is set up above: the app's modules import from here on.
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from photos.models import Label, LabelTaxonomy, ModerationLabel, Photo  # noqa: E402
from photos.selectors import library, suggestions  # noqa: E402
from photos.services import review  # noqa: E402
LABELS_PER_PHOTO = 10
NAMES = [
    ("Dog", ["Animal", "Pet", "Mammal"]), ("Cat", ["Animal", "Pet", "Mammal"]), ("Bird", ["Animal"]),
    ("Person", []), ("Face", ["Head", "Person"]), ("Car", ["Vehicle", "Transportation"]), ("Bicycle", ["Vehicle"]),
    ("Tree", ["Plant"]), ("Grass", ["Plant"]), ("Flower", ["Plant"]), ("Building", []), ("Sky", ["Nature"]),
    ("Beach", ["Nature", "Outdoors"]), ("Food", []), ("Pizza", ["Food"]), ("Sofa", ["Furniture"]),
    ("Chair", ["Furniture"]), ("Text", []), ("Mountain", ["Nature", "Outdoors"]), ("Water", ["Nature"]),
]


def seed() -> None:
    have = Photo.objects.count()
    LabelTaxonomy.objects.bulk_create([LabelTaxonomy(name=n, parents=p) for n, p in NAMES], ignore_conflicts=True)
    if have >= PHOTOS:
        print(f"reusing {have:,} photos and {Label.objects.count():,} labels")
        return
    started = time.perf_counter()
    rng = random.Random(42)
    now = "2026-11-22 08:00:00+00"
    photo_cols = ["uid", "image", "thumbnail", "original_filename", "content_type", "size", "width", "height", "sha256",
                  "etag", "status", "status_reason", "engine", "model_versions", "record_updated_at", "analysis_attempts",
                  "moderation_state", "cleared_moderation", "visibility", "created_at", "updated_at", "analyzed_at",
                  "taken_at", "taken_from", "title", "caption"]
    # Taken over seven years, a photo every few hours: a timeline with ~84 months.
    first_taken = 1_546_300_800  # 2019-01-01
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {Photo._meta.db_table} ({', '.join(photo_cols)}) FROM STDIN") as copy:
            for i in range(have, PHOTOS):
                state = "flagged" if i % 200 == 0 else "none"
                copy.write_row([str(uuid.UUID(int=rng.getrandbits(128))), f"uploads/bench/{i}.jpg", "", f"photo-{i}.jpg",
                                "image/jpeg", 100_000, 1024, 768, f"{i:064x}", "", "labeled", "", rng.choice(["local", "rekognition"]),
                                "{}", "2026-11-22T08:00:00.000000Z", 1, state, "{}", "public", now, now, now,
                                time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(first_taken + rng.randrange(7 * 365 * 86400))),
                                "camera", "", ""])
        cursor.execute(f"SELECT id FROM {Photo._meta.db_table} ORDER BY id")
        ids = [row[0] for row in cursor.fetchall()]
        label_cols = ["photo_id", "name", "confidence", "parents", "categories", "aliases", "instances", "source",
                      "review_state", "missing_from_latest", "created_at", "updated_at"]
        parents_json = {name: json.dumps(parents) for name, parents in NAMES}
        with cursor.cursor.copy(f"COPY {Label._meta.db_table} ({', '.join(label_cols)}) FROM STDIN") as copy:
            for photo_id in ids[have:]:
                for name, _ in rng.sample(NAMES, LABELS_PER_PHOTO):
                    state = rng.choices(["pending", "approved", "rejected"], [6, 3, 1])[0]
                    instances = '[{"box":{"left":0.1,"top":0.1,"width":0.3,"height":0.3},"confidence":90}]' if name in ("Dog", "Face", "Car") else "[]"
                    copy.write_row([photo_id, name, round(rng.uniform(50, 100), 2), parents_json[name], "[]", "[]",
                                    instances, "machine", state, False, now, now])
        with cursor.cursor.copy(f"COPY {ModerationLabel._meta.db_table} (photo_id, name, parent, level, confidence) FROM STDIN") as copy:
            for n, photo_id in enumerate(ids[have:]):
                if n % 200 == 0:
                    copy.write_row([photo_id, "Explicit", "", 1, round(rng.uniform(80, 100), 2)])
        LabelTaxonomy.objects.bulk_create([LabelTaxonomy(name=n, parents=p) for n, p in NAMES], ignore_conflicts=True)
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print(f"seeded {PHOTOS - have:,} photos and {(PHOTOS - have) * LABELS_PER_PHOTO:,} labels in "
          f"{time.perf_counter() - started:.0f} s; the database is {size}")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(client, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)  # warm caches
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(ctx)
    return statistics.median(times), percentile(times, 95), queries


OWNED = 10_000


def bench_my_photos(repeat: int) -> None:
    """One user with OWNED photos (the seed's first ones, given to them once)."""
    owner = get_user_model().objects.get_or_create(username="bench-owner")[0]
    if Photo.objects.filter(owner=owner).count() < OWNED:
        ids = list(Photo.objects.filter(owner__isnull=True).order_by("id").values_list("id", flat=True)[:OWNED])
        Photo.objects.filter(id__in=ids).update(owner=owner)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Photo._meta.db_table}")  # as autovacuum would: the planner learns the owner
    client = Client()
    client.force_login(owner)
    ordered = Photo.objects.filter(owner=owner, trashed_at__isnull=True).order_by("-taken_at", "-id")
    cursor = library.photo_cursor(ordered[49 * library.PAGE_SIZE - 1], "taken_at")
    print(f"\n== My photos of one user with {OWNED:,} photos, {library.PAGE_SIZE} a page ({repeat} requests each)")
    print(f"{'page':<42}{'median ms':>10}{'p95 ms':>9}{'queries':>9}")
    for title, url in (("page 1 (timeline)", "/photos/"), ("page 50 (keyset cursor)", f"/photos/?after={cursor}"),
                       ("page 1, by upload", "/photos/?sort=newest"),
                       ("search Dog", "/photos/?q=Dog"), ("search Animal NOT Cat", "/photos/?q=Animal+NOT+Cat"),
                       ("search Dog Grass, most relevant", "/photos/?q=Dog+Grass&sort=relevance"),
                       ("API owner=me, search Dog", "/api/photos/?owner=me&q=Dog"),
                       ("suggestions owner=me 'd'", "/api/labels/?owner=me&prefix=d")):
        median, p95, queries = measure(client, url, repeat)
        print(f"{title:<42}{median * 1000:>10.0f}{p95 * 1000:>9.0f}{queries:>9}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--photos", type=int, default=100_000, help="how many photos to seed (the database is per size)")
    parser.add_argument("--skip-admin", action="store_true", help="only the public pages and My photos")
    args = parser.parse_args(argv)
    seed()

    User = get_user_model()
    admin = User.objects.filter(username="bench-root").first() or User.objects.create_superuser("bench-root", password="x")
    client = Client()
    client.force_login(admin)
    pages = [
        ("review queue", "/admin/photos/reviewitem/"),
        ("review queue, label Dog", "/admin/photos/reviewitem/?label=Dog"),
        ("review queue, parent Animal", "/admin/photos/reviewitem/?parent=Animal"),
        ("review queue, confidence < 50 %", "/admin/photos/reviewitem/?band=lt50"),
        ("review queue, 70-90 % and Rekognition", "/admin/photos/reviewitem/?band=70-90&engine=rekognition"),
        ("moderation queue", "/admin/photos/moderationcase/"),
        ("photo changelist", "/admin/photos/photo/"),
        ("photos, status labeled", "/admin/photos/photo/?status__exact=labeled"),
        ("photos, label Dog", "/admin/photos/photo/?label=Dog"),
        ("photos, parent Animal", "/admin/photos/photo/?parent=Animal"),
        ("photos, search +Dog -Cat", "/admin/photos/photo/?q=%2BDog+-Cat"),
        ("photos, search Dog AND Grass NOT Car", "/admin/photos/photo/?q=Dog+AND+Grass+NOT+Car"),
        ("audit trail", "/admin/photos/auditevent/"),
    ]
    public_pages = [
        ("gallery", "/gallery/"),
        ("gallery, search Dog", "/gallery/?q=Dog"),
        ("gallery, search Animal NOT Cat", "/gallery/?q=Animal+NOT+Cat"),
        ("gallery, search dog beach", "/gallery/?q=dog+beach"),
        ("gallery, page 20 of Pet", "/gallery/?q=Pet&page=20"),
        ("API, search Dog", "/api/photos/?q=Dog"),
        ("API, search +Animal -Bird -Cat", "/api/photos/?q=%2BAnimal+-Bird+-Cat"),
        ("gallery, Animal, most relevant", "/gallery/?q=Animal&sort=relevance"),
        ("API, Dog Grass, most relevant", "/api/photos/?q=Dog+Grass&sort=relevance"),
        ("gallery, Dog by date taken", "/gallery/?q=Dog&sort=taken"),
        ("API, search beach sky, date taken", "/api/photos/?q=beach+sky&sort=taken"),
        ("search suggestions 'd'", "/api/labels/?prefix=d"),
        ("search suggestions 'mou'", "/api/labels/?prefix=mou"),
    ]
    anonymous = Client()
    print(f"\n== public pages over {PHOTOS:,} public photos, anonymous ({args.repeat} requests each)")
    print(f"{'page':<42}{'median ms':>10}{'p95 ms':>9}{'queries':>9}")
    for title, url in public_pages:
        median, p95, queries = measure(anonymous, url, args.repeat)
        print(f"{title:<42}{median * 1000:>10.0f}{p95 * 1000:>9.0f}{queries:>9}")
    started = time.perf_counter()
    names = suggestions.count_public_labels()
    print(f"recount of the public label counts (the beat task behind the suggestions): {names} names in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    if args.skip_admin:
        bench_my_photos(args.repeat)
        return 0
    print(f"\n== admin pages over {PHOTOS:,} photos / {PHOTOS * LABELS_PER_PHOTO:,} labels ({args.repeat} requests each)")
    print(f"{'page':<42}{'median ms':>10}{'p95 ms':>9}{'queries':>9}")
    for title, url in pages:
        median, p95, queries = measure(client, url, args.repeat)
        print(f"{title:<42}{median * 1000:>10.0f}{p95 * 1000:>9.0f}{queries:>9}")

    bench_my_photos(args.repeat)

    times = []
    for _ in range(5):
        ids = list(Label.objects.filter(review_state="pending").order_by("?").values_list("id", flat=True)[:1000])
        started = time.perf_counter()
        changed = review.labels_decide(label_ids=ids, decision="approved", actor=admin)
        times.append(time.perf_counter() - started)
        assert changed == 1000
        Label.objects.filter(id__in=ids).update(review_state="pending", reviewed_by=None, reviewed_at=None)
    print(f"\n== bulk approve of 1,000 labels (with 1,000 audit entries): median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (5 runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
