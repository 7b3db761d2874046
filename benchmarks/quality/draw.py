"""Draw an evaluation photo with its annotated boxes (and a coordinate grid) to check them.

    .venv/bin/python -m benchmarks.quality.draw ID [ID ...] [--grid] [--predicted]

Writes ``var/eval/drawn/<id>.png``: the photo at most 1000 px wide, the truth boxes in
green with their labels, with ``--grid`` lines every 10 % labelled with the fraction (to
read coordinates off), with ``--predicted`` the local detector's boxes at or over the
display threshold in red.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from .evaluate import predict
from .fetch import HERE, VAR, fetch_all

TRUTH = HERE / "truth"
DRAWN = VAR / "drawn"


def truth(photo_id: str) -> dict:
    path = TRUTH / f"{photo_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"boxes": []}


def open_photo(path: Path) -> Image.Image:
    image = Image.open(path)
    image.seek(0)
    return ImageOps.exif_transpose(image).convert("RGB")


def draw(photo_id: str, path: Path, *, grid: bool, predicted: list[tuple[str, list[float]]] = ()) -> Path:
    image = open_photo(path)
    scale = min(1.0, 1000 / image.width)
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    w, h = image.size
    pen = ImageDraw.Draw(image)
    if grid:
        for i in range(1, 10):
            x, y = w * i / 10, h * i / 10
            pen.line([(x, 0), (x, h)], fill=(255, 255, 0), width=1)
            pen.line([(0, y), (w, y)], fill=(255, 255, 0), width=1)
            pen.text((x + 2, 2), f".{i}", fill=(255, 255, 0))
            pen.text((2, y + 2), f".{i}", fill=(255, 255, 0))

    def box(label: str, b: list[float], colour: tuple[int, int, int], below: bool) -> None:
        left, top, width, height = b
        pen.rectangle([left * w, top * h, (left + width) * w, (top + height) * h], outline=colour, width=3)
        pen.text((left * w + 4, (top + height) * h - 14 if below else top * h + 4), label, fill=colour)

    for item in truth(photo_id).get("boxes", []):
        box(item["label"], item["box"], (0, 255, 0), False)
    for label, b in predicted:
        box(label, b, (255, 40, 40), True)
    DRAWN.mkdir(parents=True, exist_ok=True)
    out = DRAWN / f"{photo_id}.png"
    image.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="+")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--predicted", action="store_true")
    args = parser.parse_args()
    paths = fetch_all(verbose=False)
    for photo_id in args.ids:
        predicted = []
        if args.predicted:
            predicted = [(e.name, e.box) for e in predict(paths[photo_id]) if e.box and e.shown]
        print(draw(photo_id, paths[photo_id], grid=args.grid, predicted=predicted))


if __name__ == "__main__":
    main()
