"""Benchmark: analysis renditions, the labeler's worst cases (issue 11, finding 4).

    make bench-rendition                # or: .venv/bin/python -m benchmarks.rendition

For each input, each in a fresh process (peak RSS is per process): the time to make the
rendition Rekognition is sent, and the process's peak RSS, for

- ours: infra/functions/labeler/rendition.py (shrink before turning and flattening,
  JPEG decoded at reduced scale, smaller until it fits Rekognition's 5 MB);
- naive: decode, turn upright, flatten, then shrink (the order the app used before),
  one JPEG at quality 90 whatever its size (over 5 MB, Rekognition refuses it).

The labeler's memory (infra/resources.py LABELER_MEMORY_MB) and worst-case time
(handler RENDITION_SECONDS) are sized from these figures. Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import io, json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from PIL import Image, ImageOps
from infra.functions.labeler.rendition import analysis_rendition, flatten

data = open(sys.argv[1], "rb").read()
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if sys.argv[2] == "ours":
    out = analysis_rendition(data, max_pixels=100_000_000)
else:
    img = Image.open(io.BytesIO(data))
    img = flatten(ImageOps.exif_transpose(img))
    img.thumbnail((4096, 4096), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, optimize=True)
    out = buf.getvalue()
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "over_start_mb": (peak - baseline) / 1024, "bytes": len(out)}))
"""


MAKE_INPUTS = r"""
import sys
from pathlib import Path
import numpy as np
from PIL import Image

directory, rng = Path(sys.argv[1]), np.random.default_rng(1)
# 60 MP, 12,000 px wide, with transparency: over 10,000 px a side.
gradient = Image.linear_gradient("L").resize((12_000, 5_000))
Image.merge("RGBA", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient, gradient)).save(
    directory / "0.png", compress_level=1)
# A 20 MP JPEG of fine detail (noise): over Rekognition's 15 MB for S3 objects.
Image.fromarray(rng.integers(0, 256, (4000, 5000, 3), dtype=np.uint8)).save(directory / "1.jpg", quality=90)
# 12 MP WebP: not a format Rekognition reads.
Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)).save(directory / "2.webp", quality=90)
"""
NAMES = {"0.png": "60 MP RGBA PNG, 12000x5000", "1.jpg": "20 MP JPEG, 5000x4000, >15 MB",
         "2.webp": "12 MP WebP, 4000x3000"}


def inputs(directory: Path) -> dict[str, Path]:
    """Made in a child process: Linux keeps a process's peak RSS across exec, so the
    measuring children must not be forked from a parent that held these images."""
    subprocess.run([sys.executable, "-c", MAKE_INPUTS, str(directory)], check=True, timeout=600)
    return {name: directory / file for file, name in NAMES.items()}


def run(path: Path, how: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), how, str(ROOT)], capture_output=True, text=True,
                            check=True, timeout=600)
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = inputs(Path(tmp))
        print(f"{'input':32} {'size':>8} | {'ours s':>7} {'peak MB':>8} | {'naive s':>7} {'peak MB':>8} | RSS ratio  ours / naive JPEG")
        for name, path in paths.items():
            figures = {}
            for how in ("ours", "naive"):
                runs = [run(path, how) for _ in range(args.repeat)]
                figures[how] = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_mb", "bytes")}
            ours, naive = figures["ours"], figures["naive"]
            print(f"{name:32} {path.stat().st_size / 2**20:6.1f}MB | {ours['seconds']:7.2f} {ours['peak_mb']:8.0f} | "
                  f"{naive['seconds']:7.2f} {naive['peak_mb']:8.0f} | {naive['peak_mb'] / ours['peak_mb']:8.2f}x  "
                  f"{ours['bytes'] / 2**20:.1f} / {naive['bytes'] / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
