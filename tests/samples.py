"""The real photos that ship inside scikit-image and matplotlib, and helpers that
make test images in memory."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import matplotlib
import skimage
from PIL import Image, ImageDraw, ImageFont

SKIMAGE_DATA = Path(os.path.dirname(skimage.__file__)) / "data"
MPL_DATA = Path(os.path.dirname(matplotlib.__file__)) / "mpl-data"

PHOTOS = {
    "astronaut": SKIMAGE_DATA / "astronaut.png",
    "chelsea": SKIMAGE_DATA / "chelsea.png",
    "coffee": SKIMAGE_DATA / "coffee.png",
    "rocket": SKIMAGE_DATA / "rocket.jpg",
    "motorcycle": SKIMAGE_DATA / "motorcycle_left.png",
    "camera": SKIMAGE_DATA / "camera.png",
    "page": SKIMAGE_DATA / "page.png",
    "grace_hopper": MPL_DATA / "sample_data" / "grace_hopper.jpg",
}
FONT = MPL_DATA / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def photo_bytes(name: str) -> bytes:
    return PHOTOS[name].read_bytes()


def encode(img: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def heic(img: Image.Image, *, exif: bytes | None = None, quality: int = 85) -> bytes:
    """``img`` as an iPhone-style HEIC (HEVC in an HEIF container), encoded with
    pillow-heif (a test-only dependency: the app decodes with pi-heif and never encodes)."""
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(img.convert("RGB")).save(buf, quality=quality, **({"exif": exif} if exif else {}))
    return buf.getvalue()


def mpo(img: Image.Image, second: Image.Image) -> bytes:
    """A JPEG holding a second picture (Multi-Picture Object), as many phones write."""
    return encode(img.convert("RGB"), "MPO", save_all=True, append_images=[second.convert("RGB")], quality=90)


def photo_with_text(text: str = "OPEN DAILY 9 TO 5", *, base: str = "coffee", xy=(40, 40), size: int = 44):
    """A real photo with a line of text rendered on a light band, as on a sign.

    Returns (jpeg bytes, (left, top, right, bottom) of the text as fractions)."""
    img = Image.open(PHOTOS[base]).convert("RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), size)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 12, top - 10, right + 12, bottom + 10), fill=(245, 240, 225))
    draw.text(xy, text, font=font, fill=(20, 20, 20))
    w, h = img.size
    return encode(img, quality=90), (left / w, top / h, right / w, bottom / h)


# --- videos ---------------------------------------------------------------------------
# Made by PyAV's encoders (libx264, libx265, libvpx-vp9 in its wheel) from the sample
# photos: a slow pan across the photo, optionally after some black frames.
VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9", "hevc.mov": "libx265", "hevc.mp4": "libx265",
                "mkv": "libx264"}


def video(*, container: str = "mp4", seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (320, 240),
          photo: str = "chelsea", rotation: int = 0, dark_seconds: float = 0.0, audio: bool = False,
          codec: str | None = None, frame_times: list[float] | None = None) -> bytes:
    """A real video file's bytes. ``rotation``: the display matrix a phone writes (the
    frames are stored turned); ``frame_times``: explicit timestamps in seconds (to make
    a tiny file whose header says it lasts hours)."""
    import av
    import numpy as np

    width, height = size
    # The photo scaled (not stretched) to cover the frame and half as wide again, panned across.
    img = Image.open(PHOTOS[photo]).convert("RGB")
    scale = max(height / img.height, width * 1.5 / img.width)
    source = img.resize((max(width, round(img.width * scale)), max(height, round(img.height * scale))),
                        Image.Resampling.BILINEAR)
    pixels = np.asarray(source)
    top, span = (pixels.shape[0] - height) // 2, pixels.shape[1] - width
    buffer = io.BytesIO()
    fmt = "mov" if container.endswith("mov") else {"webm": "webm", "mkv": "matroska"}.get(container, "mp4")
    times = frame_times if frame_times is not None else [i / fps for i in range(int(seconds * fps))]
    with av.open(buffer, mode="w", format=fmt) as out:
        stream = out.add_stream(codec or VIDEO_CODECS[container], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # frame numbers as timestamps; milliseconds for explicit (sparse) frame times
        stream.time_base = Fraction(1, 1000) if frame_times is not None else Fraction(1, fps)
        if stream.codec_context.name == "libx265":
            stream.codec_tag = "hvc1"  # as an iPhone writes it
            # no B-frames: PyAV cannot mux x265's reordered timestamps into MP4/MOV
            stream.options = {"x265-params": "log-level=error:bframes=0"}
        if rotation:
            stream.set_display_rotation(-rotation)  # FFmpeg's matrix turns counter-clockwise
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=16000)
        for t in times:
            if t < dark_seconds:
                rgb = np.zeros((height, width, 3), np.uint8)
            else:
                x = int(span * (t / max(times[-1], 1e-6)))
                rgb = np.ascontiguousarray(pixels[top : top + height, x : x + width])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = int(round(t / stream.time_base))
            frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            samples = np.zeros((1, 1024), np.float32)
            for i in range(int(seconds * 16000 / 1024)):
                aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                aframe.sample_rate, aframe.pts = 16000, i * 1024
                for packet in sound.encode(aframe):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return buffer.getvalue()


def audio_only(seconds: float = 2.0) -> bytes:
    """An MP4 holding only an AAC track."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        sound = out.add_stream("aac", rate=16000)
        for i in range(int(seconds * 16000 / 1024)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return buffer.getvalue()


def padded(video_bytes: bytes, size: int) -> bytes:
    """A real video padded with a top-level ``free`` box (which demuxers skip) to ``size``
    bytes: a large upload that still probes and decodes."""
    import struct

    padding = size - len(video_bytes)
    assert padding >= 8, "pad to at least 8 bytes more than the video"
    return video_bytes + struct.pack(">I", padding) + b"free" + bytes(padding - 8)
