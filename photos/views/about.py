"""The site's own source code, offered to everyone who uses it over a network (AGPL-3.0
section 13): the footer links here, or to SOURCE_CODE_URL where the operator publishes
the code they run."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse
from django.views.decorators.http import require_GET
from django_ratelimit.decorators import ratelimit

# What the running copy is built from: the code, its templates, build files and docs. Not
# the local state (var/), the virtualenv, installed npm packages or build output.
SOURCE_PARTS = ("LICENSE", "README.md", "THIRD_PARTY.md", "Makefile", "manage.py", "pytest.ini", "requirements.txt",
                "requirements-dev.txt", ".ci", "benchmarks", "docs", "infra", "mediaapp", "photos", "templates", "tests")
SKIPPED = {"__pycache__", "node_modules", "cdk.out", ".pytest_cache"}


def source_files(root: Path):
    for part in SOURCE_PARTS:
        path = root / part
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not SKIPPED & set(file.relative_to(root).parts):
                    yield file


@ratelimit(key="ip", rate="30/h", method="GET")
@require_GET
def source_code(request):
    """A .tar.gz of the source of this running copy, made on request."""
    root = Path(settings.BASE_DIR)
    archive = tempfile.TemporaryFile()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for file in source_files(root):
            tar.add(file, arcname=f"mediaapp/{file.relative_to(root)}", recursive=False)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename="mediaapp-source.tar.gz", content_type="application/gzip")
