"""Benchmark: the local detector beside the stock NudeNet + RapidOCR pair.

    make bench                       # or: .venv/bin/python -m benchmarks.detector
    make bench BENCH_ARGS="--rounds 9"

Each engine runs in its own worker process (so model loading and peak memory are its
own); the driver alternates rounds between them so machine noise hits both alike, and
does it twice: with every core, and pinned to one core. Per photo it reports the
latency of a full analysis (labels + moderation + text, what one upload costs):

- ours:  infra.functions.labeler.analyze() with LocalRekognition (three concurrent
         calls sharing one decode, one NudeNet pass, one OCR pass);
- stock: nudenet.NudeDetector().detect() then rapidocr_onnxruntime.RapidOCR()(),
         each with its default settings.

It also checks that both find the same faces, measures model load time and the peak
RSS while analysing a 12 MP photo, each in a fresh process, and prints what ours sees
in each photo (top labels at MinConfidence 50) against the expectations written in
EXPECTED below.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PHOTO_NAMES = ["astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera", "grace_hopper", "page"]
FACE_THRESHOLD = 50.0  # percent, both engines
DISPLAY_THRESHOLD = 70.0  # settings.LABEL_DISPLAY_THRESHOLD's default
# What a person sees in each photo: at least one of these labels should be displayed
# (confidence >= DISPLAY_THRESHOLD); "nothing" means no label should be.
EXPECTED = {
    "astronaut": {"Person"},
    "chelsea": {"Cat"},
    "coffee": {"Espresso", "Coffee", "Coffee Cup", "Cup"},
    "rocket": {"Rocket", "Missile", "Spacecraft", "Space Shuttle"},
    "motorcycle": {"Motorcycle"},
    "camera": {"Person", "Tripod", "Camera"},
    "grace_hopper": {"Person"},
    "page": {"Text"},
    "coffee+text": {"Text", "Espresso", "Coffee"},
    "hubble": set(),
}


def load_photos() -> list[tuple[str, bytes]]:
    from tests.samples import photo_bytes, photo_with_text

    from tests.samples import SKIMAGE_DATA

    photos = [(name, photo_bytes(name)) for name in PHOTO_NAMES]
    photos.append(("coffee+text", photo_with_text()[0]))
    photos.append(("hubble", (SKIMAGE_DATA / "hubble_deep_field.jpg").read_bytes()))
    return photos


def twelve_megapixels() -> bytes:
    from PIL import Image

    from tests.samples import PHOTOS, encode

    return encode(Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC), quality=90)


# --- engines (run inside worker processes) ------------------------------------------


class Ours:
    def __init__(self):
        from photos.analysis import LocalRekognition

        self.client = LocalRekognition(label_models=[])
        self.client.warm()

    def analyze(self, name: str, data: bytes) -> dict:
        from infra.functions.labeler import ImageRef, analyze

        self.client.clear_cache()  # every analysis is cold, as for a new upload
        record = analyze(ImageRef(bucket="bench", key=name, data=data), self.client)
        faces = [lb for lb in record.labels if lb.name == "Face"]
        return {
            "faces": sum(1 for lb in faces for i in lb.instances if i.confidence >= FACE_THRESHOLD),
            "lines": sum(1 for t in record.text if t.type == "LINE"),
            "labels": [
                (lb.name, round(float(lb.confidence)), len(lb.instances))
                for lb in sorted(record.labels, key=lambda lb: -lb.confidence)
            ],
        }


class Stock:
    def __init__(self):
        from nudenet import NudeDetector
        from rapidocr_onnxruntime import RapidOCR

        self.nude = NudeDetector()
        self.ocr = RapidOCR()

    def analyze(self, name: str, data: bytes) -> dict:
        detections = self.nude.detect(data)
        result, _ = self.ocr(data)
        return {
            "faces": sum(1 for d in detections if d["class"].startswith("FACE_") and d["score"] * 100 >= FACE_THRESHOLD),
            "lines": len(result or []),
        }


ENGINES = {"ours": Ours, "stock": Stock}


def worker(engine: str, cpus: int | None) -> None:
    """Line protocol on stdin/stdout: 'round' -> one JSON line of per-photo results."""
    if cpus:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cpus]))
    started = time.perf_counter()
    runner = ENGINES[engine]()
    load_seconds = time.perf_counter() - started
    photos = load_photos()
    print(json.dumps({"load_seconds": load_seconds}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        results = []
        for name, data in photos:
            t0 = time.perf_counter()
            found = runner.analyze(name, data)
            results.append({"photo": name, "seconds": time.perf_counter() - t0, **found})
        print(json.dumps(results), flush=True)


def peak_rss_worker(engine: str) -> None:
    data = twelve_megapixels()
    runner = ENGINES[engine]()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    found = runner.analyze("12mp", data)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak / 1024, "after_load_mb": baseline / 1024, "seconds": seconds, **found}))


def load_time_worker(engine: str) -> None:
    t0 = time.perf_counter()
    ENGINES[engine]()
    print(json.dumps({"load_seconds": time.perf_counter() - t0}))


# --- driver --------------------------------------------------------------------------


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.detector", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )


def _run_once(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.detector", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def side_by_side(rounds: int, cpus: int | None) -> dict:
    procs = {name: _spawn(["--worker", name] + (["--cpus", str(cpus)] if cpus else [])) for name in ENGINES}
    loads = {name: json.loads(p.stdout.readline())["load_seconds"] for name, p in procs.items()}
    samples: dict[str, list[dict]] = {name: [] for name in ENGINES}
    for _ in range(1 + rounds):  # round 0 warms caches and is discarded
        for name, proc in procs.items():
            proc.stdin.write("round\n")
            proc.stdin.flush()
            samples[name].append(json.loads(proc.stdout.readline()))
    for proc in procs.values():
        proc.stdin.close()
        proc.wait(timeout=60)
    summary = {}
    for name, per_round in samples.items():
        latencies = [r["seconds"] for rnd in per_round[1:] for r in rnd]
        round_times = [sum(r["seconds"] for r in rnd) for rnd in per_round[1:]]
        summary[name] = {
            "median_ms": statistics.median(latencies) * 1000,
            "p95_ms": percentile(latencies, 95) * 1000,
            "photos_per_s": len(per_round[1]) / statistics.median(round_times),
            "load_s": loads[name],
            "faces": {r["photo"]: r["faces"] for r in per_round[-1]},
            "lines": {r["photo"]: r["lines"] for r in per_round[-1]},
            "labels": {r["photo"]: r.get("labels", []) for r in per_round[-1]},
            "per_photo_ms": {
                r["photo"]: statistics.median(rnd[i]["seconds"] for rnd in per_round[1:]) * 1000
                for i, r in enumerate(per_round[1])
            },
        }
    summary["speedup_median"] = summary["stock"]["median_ms"] / summary["ours"]["median_ms"]
    summary["speedup_throughput"] = summary["ours"]["photos_per_s"] / summary["stock"]["photos_per_s"]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", choices=sorted(ENGINES))
    parser.add_argument("--cpus", type=int)
    parser.add_argument("--peak-rss", choices=sorted(ENGINES))
    parser.add_argument("--load-time", choices=sorted(ENGINES))
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.cpus)
        return 0
    if args.peak_rss:
        peak_rss_worker(args.peak_rss)
        return 0
    if args.load_time:
        load_time_worker(args.load_time)
        return 0

    print(f"photos: {', '.join(n for n, _ in load_photos())} ({args.rounds} rounds after a warm-up round)")
    print(f"cores available: {len(os.sched_getaffinity(0))}")
    report = {}
    for label, cpus in (("all cores", None), ("one core", 1)):
        result = side_by_side(args.rounds, cpus)
        report[label] = result
        ours, stock = result["ours"], result["stock"]
        print(f"\n== {label}")
        print(f"{'engine':<8}{'median ms':>11}{'p95 ms':>9}{'photos/s':>10}")
        for name in ("ours", "stock"):
            r = result[name]
            print(f"{name:<8}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}{r['photos_per_s']:>10.2f}")
        print(f"speed-up (stock/ours): median {result['speedup_median']:.2f}x, throughput {result['speedup_throughput']:.2f}x")
        print("per photo ms (ours / stock):", ", ".join(
            f"{p} {ours['per_photo_ms'][p]:.0f}/{stock['per_photo_ms'][p]:.0f}" for p in ours["per_photo_ms"]))
        same = ours["faces"] == stock["faces"]
        print(f"faces >= {FACE_THRESHOLD:.0f}% (ours / stock): " + ", ".join(
            f"{p} {ours['faces'][p]}/{stock['faces'][p]}" for p in ours["faces"]) + f"  -> {'same' if same else 'DIFFERENT'}")
        print("text lines (ours / stock): " + ", ".join(f"{p} {ours['lines'][p]}/{stock['lines'][p]}" for p in ours["lines"]))

    print(f"\n== what ours sees (labels >= {DISPLAY_THRESHOLD:.0f}, the display threshold; [n] = boxes)")
    seen = report["one core"]["ours"]["labels"]
    hits = 0
    for photo, labels in seen.items():
        shown = [(n, c, b) for n, c, b in labels if c >= DISPLAY_THRESHOLD]
        expected = EXPECTED.get(photo, set())
        ok = bool({n for n, _, _ in shown} & expected) if expected else not shown
        hits += ok
        listed = ", ".join(f"{n} {c}" + (f"[{b}]" if b else "") for n, c, b in shown[:8]) or "nothing"
        print(f"{'ok  ' if ok else 'MISS'} {photo:<13} {listed}   (expected: {', '.join(sorted(expected)) or 'nothing'})")
    print(f"expected label shown: {hits}/{len(seen)} photos")

    print("\n== model load, fresh process (median of 3)")
    for name in ENGINES:
        loads = [_run_once(["--load-time", name])["load_seconds"] for _ in range(3)]
        report.setdefault("load", {})[name] = statistics.median(loads)
        print(f"{name:<8}{statistics.median(loads):.2f} s")
    print("\n== 12 MP JPEG (3000x4000), fresh process")
    for name in ENGINES:
        r = _run_once(["--peak-rss", name])
        report.setdefault("12mp", {})[name] = r
        print(f"{name:<8}peak RSS {r['peak_rss_mb']:.0f} MB (after loading models {r['after_load_mb']:.0f} MB), "
              f"{r['seconds'] * 1000:.0f} ms, faces {r['faces']}")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
