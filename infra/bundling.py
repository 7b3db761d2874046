"""Lambda layers built without Docker: pip installs a hash-locked requirements file for
Lambda's platform (wheels only, so nothing is compiled here) into the layer's python/.

CDK tries local bundling before Docker; this bundler always succeeds or raises, so no
Docker engine is ever needed. The installed tree is cached under var/cache/ by the hash
of the requirements and the target platform, so each synthesis after the first copies
files instead of calling pip.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import ILocalBundling

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "cache" / "lambda-layers"


@jsii.implements(ILocalBundling)
class PipLayer:
    def __init__(self, requirements: Path, *, platforms: list[str], python_version: str):
        self.requirements = requirements
        self.platforms = platforms
        self.python_version = python_version

    def cached(self) -> Path:
        """The installed tree for this lock and platform, installing it the first time."""
        key = hashlib.sha256(
            self.requirements.read_bytes() + repr((self.platforms, self.python_version)).encode()
        ).hexdigest()[:20]
        target = CACHE / key
        if not (target / ".complete").exists():
            import tempfile

            CACHE.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE))  # two synths at once never share one
            platforms = [arg for platform in self.platforms for arg in ("--platform", platform)]
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                 "--require-hashes", "--only-binary=:all:", "--no-compile", "--implementation", "cp",
                 "--python-version", self.python_version, *platforms, "--target", str(partial),
                 "-r", str(self.requirements)],
                check=True,
            )
            shutil.rmtree(partial / "bin", ignore_errors=True)  # console scripts: not for Lambda
            (partial / ".complete").touch()
            try:
                partial.rename(target)
            except OSError:  # another build finished first: keep its tree
                shutil.rmtree(partial, ignore_errors=True)
                if not (target / ".complete").exists():
                    raise
        return target

    def try_bundle(self, output_dir: str, options=None) -> bool:  # jsii passes the options positionally
        shutil.copytree(self.cached(), Path(output_dir) / "python", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".complete"))
        return True
