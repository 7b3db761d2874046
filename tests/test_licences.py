"""Every runtime dependency's licence is known and compatible with the project's
AGPL-3.0-or-later, and THIRD_PARTY.md says so as it stands (manage.py licences)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_runtime_set_passes_and_third_party_md_is_current(capsys):
    call_command("licences", "--check")

    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line and not line.startswith("#")]
    assert f"{len(pins)} runtime dependencies, every licence known and compatible" in capsys.readouterr().out


def test_the_licence_and_its_notice_are_in_the_repository():
    licence = (ROOT / "LICENSE").read_text()
    readme = (ROOT / "README.md").read_text()

    assert licence.lstrip().startswith("GNU AFFERO GENERAL PUBLIC LICENSE") and "Version 3, 19 November 2007" in licence
    assert "AGPL-3.0-or-later" in readme and "THIRD_PARTY.md" in readme


def report(tmp_path, **packages) -> tuple[str, str]:
    """A pip-licenses report and a lock holding exactly ``packages`` (name=declared)."""
    entries = [{"Name": name, "Version": "1.0", "License": declared, "LicenseFile": "UNKNOWN", "LicenseText": "UNKNOWN"}
               for name, declared in packages.items()]
    found = tmp_path / "report.json"
    found.write_text(json.dumps(entries))
    lock = tmp_path / "requirements.txt"
    lock.write_text("".join(f"{name}==1.0\n" for name in packages))
    return str(found), str(lock)


@pytest.mark.parametrize(("declared", "why"), [
    ("CC-BY-NC-4.0", "not compatible"),  # non-commercial model weights
    ("GPL-2.0-only", "not compatible"),
    ("UNKNOWN", "licence unknown"),
    ("", "licence unknown"),
    ("Research Only License", "not compatible"),
])
def test_a_dependency_with_an_unknown_or_incompatible_licence_fails_the_check(tmp_path, declared, why):
    found, lock = report(tmp_path, good="MIT License", suspect=declared)

    with pytest.raises(CommandError, match=rf"suspect: .*{why}"):
        call_command("licences", "--check", "--report", found, "--requirements", lock)


def test_a_gnu_licence_file_behind_permissive_metadata_fails_until_explained(tmp_path):
    found, lock = report(tmp_path, quiet="MIT License")
    entries = json.loads(Path(found).read_text())
    entries[0].update(LicenseFile="/x/site-packages/quiet-1.0.dist-info/LICENSE",
                      LicenseText="                    GNU AFFERO GENERAL PUBLIC LICENSE\n       Version 3")
    Path(found).write_text(json.dumps(entries))

    with pytest.raises(CommandError, match="quiet: the metadata says 'MIT License' but LICENSE is a AGPL text"):
        call_command("licences", "--check", "--report", found, "--requirements", lock)


def test_compatible_licences_pass_in_every_spelling(tmp_path):
    found, lock = report(tmp_path, a="MIT License", b="BSD License", c="Apache-2.0 OR BSD-2-Clause", d="LGPL-3.0-only",
                         e="Apache Software License; BSD License", f="GPL-3.0-or-later")

    call_command("licences", "--check", "--report", found, "--requirements", lock)


def test_a_pinned_package_that_is_not_installed_fails(tmp_path):
    found, lock = report(tmp_path, present="MIT")
    Path(lock).write_text("present==1.0\nabsent==2.0\n")

    with pytest.raises(CommandError, match="absent: not found"):
        call_command("licences", "--check", "--report", found, "--requirements", lock)


@pytest.mark.django_db
def test_every_page_offers_the_source_of_the_running_copy(client, settings):
    import io
    import tarfile

    page = client.get("/gallery/").content.decode()
    assert 'href="/source/">Source code</a>' in page

    response = client.get("/source/")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    names = tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)), mode="r:gz").getnames()
    assert {"mediaapp/LICENSE", "mediaapp/photos/views/about.py", "mediaapp/Makefile"} <= set(names)
    assert not [n for n in names if "/var/" in n or "__pycache__" in n or n.endswith("admin-password")]

    settings.SOURCE_CODE_URL = "https://example.org/our-fork"
    assert 'href="https://example.org/our-fork">Source code</a>' in client.get("/gallery/").content.decode()
