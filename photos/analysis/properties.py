"""Image quality and dominant colours, shaped like DetectLabels' ImageProperties.

Brightness, sharpness and contrast are 0-100 and move the way Rekognition's do
(brighter, sharper, more contrasty -> higher); they are not calibrated to its values.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
from PIL import Image, ImageColor

SAMPLE_SIDE = 256
# Laplacian variance at which sharpness reads ~63 (1 - 1/e); chosen on the bundled
# sample photos so that a crisp photo reads 80-95 and a 5 px blur reads under 30.
SHARPNESS_SCALE = 300.0

_CSS = {
    name: ImageColor.getrgb(value)
    for name, value in ImageColor.colormap.items()
    if isinstance(value, str)
}


def quality(rgb: np.ndarray) -> dict[str, float]:
    small = _downscale(rgb, SAMPLE_SIDE * 2)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    brightness = float(gray.mean() / 255.0 * 100.0)
    # RMS contrast: a black/white checkerboard (std 127.5) reads 100.
    contrast = float(min(100.0, gray.std() / 127.5 * 100.0))
    laplacian_var = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    sharpness = float(100.0 * (1.0 - np.exp(-laplacian_var / SHARPNESS_SCALE)))
    return {"Brightness": brightness, "Sharpness": sharpness, "Contrast": contrast}


def dominant_colors(rgb: np.ndarray, *, count: int = 5) -> list[dict]:
    if count <= 0:
        return []
    small = Image.fromarray(_downscale(rgb, 96))
    quantized = small.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    counts = sorted(quantized.getcolors() or [], reverse=True)
    total = sum(n for n, _ in counts) or 1
    colors = []
    for n, index in counts[:count]:
        r, g, b = palette[index * 3 : index * 3 + 3]
        colors.append(
            {
                "Red": int(r),
                "Green": int(g),
                "Blue": int(b),
                "HexCode": f"#{r:02x}{g:02x}{b:02x}",
                "CSSColor": _nearest_css((r, g, b)),
                "SimplifiedColor": simplified_color((r, g, b)),
                "PixelPercent": float(100.0 * n / total),
            }
        )
    return colors


def simplified_color(rgb: tuple[int, int, int]) -> str:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    if v < 0.18:
        return "black"
    if s < 0.15:
        return "white" if v > 0.85 else "grey"
    hue = h * 360
    if 15 <= hue < 45 and v < 0.6:
        return "brown"
    if hue < 15 or hue >= 345:
        return "red"
    if hue < 45:
        return "orange"
    if hue < 70:
        return "yellow"
    if hue < 170:
        return "green"
    if hue < 260:
        return "blue"
    if hue < 300:
        return "purple"
    return "pink"


def _nearest_css(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return min(_CSS, key=lambda n: (_CSS[n][0] - r) ** 2 + (_CSS[n][1] - g) ** 2 + (_CSS[n][2] - b) ** 2)


def _downscale(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
