"""Videos: what a file is (read from its container, before anything is stored) and the
frame that stands for it (its poster).

Decoding is PyAV's (FFmpeg's libraries in its wheel; the project is AGPL-3.0-or-later,
which accepts the GPL x264/x265 those wheels link, see docs/licensing.md). A video is
never read whole: the probe reads the container's header and one frame at each end,
the poster seeks to a few keyframes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Iterator

import av
import cv2
import numpy as np
from PIL import Image

# Containers and codecs accepted (issue 21): MP4 and MOV with H.264 or HEVC, WebM with
# VP8, VP9 or AV1. FFmpeg names the demuxer, then the codec.
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": ("MP4", "MOV"), "matroska,webm": ("WEBM",)}
CODECS = {"h264": "H.264", "hevc": "HEVC", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})  # what WebM allows; the same demuxer reads MKV
# What the poster must not be: a black or blurred frame (Immich skips those too).
DARK_LUMA = 28.0  # mean luma (0-255) under which a frame is too dark to stand for the video
POSTER_SAMPLES = 8  # keyframes looked at, spread over the video
SCORE_SIDE = 320  # frames are scored at this width
MAX_DECODE_AHEAD = 300  # frames decoded past a keyframe to reach a sample's time (10 s at 30 fps)
# Samples this far apart are reached by seeking (a GOP's decode each) rather than by
# decoding every frame between them; so is any video whose full decode would exceed the
# budget (1080p30 for five minutes; 4K60 is sought from 40 s).
SEEK_FROM_MS = 3000
DECODE_BUDGET_PIXELS = 2e10


class VideoError(Exception):
    """The file is not a video we accept: ``message`` says why, for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class VideoProbe:
    container: str  # "MP4", "MOV" or "WEBM"
    codec: str  # FFmpeg's name: "h264", "hevc", "vp8", "vp9", "av1"
    duration_ms: int
    width: int  # as displayed (after the rotation)
    height: int
    rotation: int  # degrees the stored frames are turned clockwise to display: 0, 90, 180, 270
    frame_rate: float
    has_audio: bool

    @property
    def codec_name(self) -> str:
        return CODECS[self.codec]


# HEIC and AVIF photos are ISO base media files too: their ``ftyp`` brand says so.
IMAGE_BRANDS = frozenset({b"avif", b"avis", b"avio", b"avci", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx",
                          b"hevm", b"hevs", b"mif1", b"mif2", b"msf1"})


def looks_like_video(head: bytes) -> bool:
    """ISO base media (MP4, MOV: an ``ftyp`` box of a brand that is not an image's, or a
    ``moov``, ``mdat``, ``wide`` or ``free`` box first) or Matroska/WebM (its EBML
    magic): the containers we accept. Needs the first 12 bytes."""
    if head[4:8] == b"ftyp":
        return head[8:12] not in IMAGE_BRANDS
    return head[4:8] in (b"moov", b"mdat", b"wide", b"free") or head[:4] == b"\x1a\x45\xdf\xa3"


def duration_text(ms: int) -> str:
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _open(source: IO[bytes] | str):
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, EOFError, OSError):
        raise VideoError("is not a video we can read (corrupt, or not a video).") from None


def probe(source: IO[bytes] | str, *, max_seconds: float, max_pixels: int, min_side: int) -> VideoProbe:
    """Read what the container says, check it against the limits, and decode one frame
    at the start and one near the end (a truncated or corrupt file fails here, before
    anything is stored). Raises VideoError with the reason."""
    with _open(source) as container:
        kind = CONTAINERS.get(container.format.name)
        if kind is None:
            raise VideoError("is not an MP4, MOV or WebM video.")
        if not container.streams.video:
            raise VideoError("has no video track (is it audio only?).")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in CODECS:
            raise VideoError(f"is encoded as {codec}; upload H.264, HEVC, VP8, VP9 or AV1 video.")
        if kind == ("WEBM",) and codec not in WEBM_CODECS:  # Matroska (.mkv) with H.264/HEVC
            raise VideoError("is a Matroska (MKV) video; upload MP4, MOV or WebM.")
        duration_ms = _duration_ms(container, stream)
        if duration_ms is None or duration_ms <= 0:
            raise VideoError("does not say how long it is (a broken or unfinished recording?).")
        if duration_ms > max_seconds * 1000:
            raise VideoError(f"is {duration_text(duration_ms)} long; the limit is {duration_text(int(max_seconds * 1000))}.")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError("does not say its frame size (corrupt?).")
        if width * height > max_pixels:
            raise VideoError(f"is {width}×{height} pixels a frame; the limit is {max_pixels / 1e6:.1f} MP.")
        if min(width, height) < min_side:
            raise VideoError(f"is {width}×{height} pixels a frame; videos must be at least {min_side} pixels on each side.")
        first = _frame_at(container, stream, 0)
        if first is None:
            raise VideoError("is truncated or corrupt (no frame could be decoded).")
        # FFmpeg's display matrix turns counter-clockwise; ours is the clockwise turn (an
        # iPhone's portrait video: frames stored landscape, matrix -90, shown turned 90).
        rotation = int(round(-(getattr(first, "rotation", 0) or 0))) % 360
        last = _frame_at(container, stream, max(0, duration_ms - 1000) / 1000)
        if last is None:
            raise VideoError("is truncated or corrupt (its end cannot be decoded).")
        shown_w, shown_h = (height, width) if rotation in (90, 270) else (width, height)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        return VideoProbe(
            container=kind[0] if kind[0] != "MP4" or not _is_quicktime(container) else "MOV",
            codec=codec, duration_ms=duration_ms, width=shown_w, height=shown_h,
            rotation=rotation, frame_rate=rate, has_audio=bool(container.streams.audio),
        )


def _is_quicktime(container) -> bool:
    brand = (container.metadata or {}).get("major_brand", "")
    return brand.strip() == "qt"


def _duration_ms(container, stream) -> int | None:
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * 1000)
    if container.duration:
        return int(container.duration / 1000)  # AV_TIME_BASE is microseconds
    return None


def _frame_at(container, stream, seconds: float, *, exact: bool = False):
    """A frame near ``seconds``: the keyframe before it, or with ``exact`` the first
    frame at or after it (decoding on from that keyframe, at most ``MAX_DECODE_AHEAD``
    frames). None when nothing decodes."""
    try:
        container.seek(int(seconds / stream.time_base) if stream.time_base else 0, stream=stream,
                       backward=True, any_frame=False)
        frame = None
        for n, frame in enumerate(container.decode(stream)):
            if not exact or n >= MAX_DECODE_AHEAD or (frame.time is not None and frame.time >= seconds - 1e-3):
                return frame
        return frame
    except (av.FFmpegError, ValueError, EOFError, OSError):
        return None


def _rgb(frame, side: int) -> np.ndarray:
    """A decoded frame as RGB, scaled (by FFmpeg, while converting) to at most ``side`` a side."""
    scale = min(1.0, side / max(frame.width, frame.height))
    return frame.to_ndarray(format="rgb24", width=max(2, round(frame.width * scale)),
                            height=max(2, round(frame.height * scale)))


def _start_seconds(stream) -> float:
    """When the stream's first frame is stamped (usually 0): frame times count from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0


def probe_stored(source: IO[bytes] | str) -> VideoProbe:
    """``probe`` for a video already stored: its limits were checked at upload."""
    return probe(source, max_seconds=float("inf"), max_pixels=10**9, min_side=1)


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """A decoded frame as displayed: turned ``rotation`` degrees clockwise."""
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90) % 4)) if rotation % 360 else rgb


def frame_quality(rgb: np.ndarray) -> tuple[float, float]:
    """(mean luma 0-255, sharpness: the variance of the Laplacian) of a frame."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(gray.mean()), float(cv2.Laplacian(gray, cv2.CV_64F).var())


def poster(source: IO[bytes] | str, probed: VideoProbe, *, side: int = 1280) -> tuple[Image.Image, int]:
    """The frame that stands for the video, upright, at most ``side`` pixels a side,
    and its time in milliseconds: of ``POSTER_SAMPLES`` keyframes spread between 5 % and
    95 % of the video, the sharpest that is not dark (the brightest if all are)."""
    with _open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        best = None  # (is_lit, sharpness, brightness, ms, frame)
        for i in range(POSTER_SAMPLES):
            at = probed.duration_ms * (0.05 + 0.9 * i / max(1, POSTER_SAMPLES - 1)) / 1000
            frame = _frame_at(container, stream, at, exact=True)
            if frame is None:
                continue
            small = frame.to_ndarray(format="rgb24", width=SCORE_SIDE,
                                     height=max(1, round(SCORE_SIDE * frame.height / max(1, frame.width))))
            brightness, sharpness = frame_quality(small)
            ms = int(float(frame.time or 0) * 1000)
            key = (brightness >= DARK_LUMA, sharpness if brightness >= DARK_LUMA else brightness)
            if best is None or key > best[0]:
                best = (key, ms, frame)
        if best is None:
            raise VideoError("is truncated or corrupt (no frame could be decoded).")
        _, ms, frame = best
        rgb = _rgb(frame, side)
    return Image.fromarray(upright(rgb, probed.rotation)), ms


def sample_frames(source: IO[bytes] | str, probed: VideoProbe, *, interval_ms: int, max_frames: int,
                  side: int = 1280) -> Iterator[tuple[int, np.ndarray]]:
    """The frames a video's analysis looks at, upright, at most ``side`` pixels a side,
    with their times in ms: one every ``interval_ms`` (widened so that at most
    ``max_frames`` cover the whole video), plus each keyframe at least half an interval
    from the last sample (encoders put keyframes at scene cuts), while the cap allows.
    One pass of decoding; only the frames taken are converted."""
    interval = sample_interval(probed, interval_ms=interval_ms, max_frames=max_frames)
    if interval >= SEEK_FROM_MS or _decode_cost(probed) > DECODE_BUDGET_PIXELS:
        yield from _sampled_by_seeking(source, probed, interval=interval, max_frames=max_frames, side=side)
        return
    scheduled = -(-probed.duration_ms // interval)
    cuts_allowed = max(0, max_frames - scheduled)  # scene cuts only from what the schedule leaves
    taken = 0
    last = None
    next_due = 0
    with _open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = _start_seconds(stream)
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                ms = max(0, int(round((frame.time - origin) * 1000)))
                due = ms >= next_due
                cut = (frame.key_frame and last is not None and ms - last >= interval // 2 and cuts_allowed > 0
                       and not due)
                if not (due or cut):
                    continue
                if cut:
                    cuts_allowed -= 1
                yield ms, upright(_rgb(frame, side), probed.rotation)
                taken += 1
                last = ms
                if due:
                    next_due = (ms // interval + 1) * interval
                if taken >= max_frames:
                    return
        except (av.FFmpegError, EOFError, OSError):
            raise VideoError(f"is damaged after {duration_text(last or 0)}; it cannot be analysed.") from None


def sample_interval(probed: VideoProbe, *, interval_ms: int, max_frames: int) -> int:
    """The sampling interval used: ``interval_ms``, widened so ``max_frames`` cover the video."""
    return max(interval_ms, -(-probed.duration_ms // max(1, max_frames)))


def _decode_cost(probed: VideoProbe) -> float:
    """Pixels a full decode would produce: 4K60 for two minutes is 6e10."""
    return probed.width * probed.height * (probed.frame_rate or 30) * probed.duration_ms / 1000


def _sampled_by_seeking(source, probed: VideoProbe, *, interval: int, max_frames: int, side: int):
    """Long videos: a seek to the keyframe before each sample time and a decode on to it,
    instead of decoding every frame in between."""
    with _open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        at = 0
        origin = _start_seconds(stream)
        for _ in range(max_frames):
            if at >= probed.duration_ms:
                return
            frame = _frame_at(container, stream, origin + at / 1000, exact=True)
            if frame is None:
                raise VideoError(f"is damaged at {duration_text(at)}; it cannot be analysed.")
            yield max(0, int(round((float(frame.time or 0) - origin) * 1000))), upright(_rgb(frame, side), probed.rotation)
            at += interval


def frames_at(source: IO[bytes] | str, probed: VideoProbe, times_ms: list[int], *,
              side: int = 640) -> Iterator[tuple[int, np.ndarray]]:
    """The frames at these times (ms), upright, at most ``side`` a side, by seeking; a
    time nothing decodes at is left out."""
    with _open(source) as container:
        stream = container.streams.video[0]
        origin = _start_seconds(stream)
        for at in times_ms:
            frame = _frame_at(container, stream, origin + at / 1000, exact=True)
            if frame is not None:
                yield at, upright(_rgb(frame, side), probed.rotation)


# What every browser plays: the stream rendition is H.264 (and AAC) in MP4.
STREAM_SIDE = 1280
STREAM_CRF = "23"


def stream_rendition(source: IO[bytes] | str, probed: VideoProbe, out_path: str, *, side: int = STREAM_SIDE) -> None:
    """Write an H.264/AAC MP4 of the video that any browser plays: upright (the rotation
    applied to the pixels, no display matrix), at most ``side`` pixels a side, with no
    metadata of the original (no GPS, device or dates), the index first (``faststart``)
    so playback starts before the whole file arrives. For HEVC, which Chromium does not
    play, and for everyone but the owner, as a photo's display rendition is."""
    scale = min(1.0, side / max(probed.width, probed.height))
    width = max(2, int(probed.width * scale) // 2 * 2)
    height = max(2, int(probed.height * scale) // 2 * 2)
    with _open(source) as container, av.open(out_path, mode="w", format="mp4",
                                               options={"movflags": "faststart"}) as out:
        video_in = container.streams.video[0]
        video_in.thread_type = "AUTO"
        rate = video_in.average_rate or video_in.guessed_rate or 30
        video_out = out.add_stream("libx264", rate=rate, options={"crf": STREAM_CRF, "preset": "veryfast"})
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.time_base = video_in.time_base
        audio_in = container.streams.audio[0] if container.streams.audio else None
        audio_out = resampler = None
        if audio_in is not None:
            audio_out = out.add_stream("aac", rate=48000, layout="stereo")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is video_in:
                        turned = frame
                        if probed.rotation or (frame.width, frame.height) != (width, height):
                            stored = (height, width) if probed.rotation in (90, 270) else (width, height)
                            rgb = upright(frame.to_ndarray(format="rgb24", width=stored[0], height=stored[1]),
                                          probed.rotation)
                            turned = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                            turned.pts, turned.time_base = frame.pts, frame.time_base
                        for out_packet in video_out.encode(turned):
                            out.mux(out_packet)
                    elif resampler is not None:
                        frame.pts = None  # the resampler and encoder number the samples
                        for resampled in resampler.resample(frame):
                            for out_packet in audio_out.encode(resampled):
                                out.mux(out_packet)
        except (av.FFmpegError, EOFError) as exc:
            raise VideoError(f"could not be converted for playback ({exc}).") from None
        for out_packet in video_out.encode():
            out.mux(out_packet)
        if audio_out is not None:
            for out_packet in audio_out.encode():
                out.mux(out_packet)


# FFmpeg codec names Chromium and Firefox play in MP4/MOV or WebM (HEVC needs Safari).
BROWSER_PLAYABLE = frozenset({"h264", "vp8", "vp9", "av1"})


__all__ = ["BROWSER_PLAYABLE", "CODECS", "VideoError", "VideoProbe", "duration_text", "looks_like_video", "poster", "probe",
           "probe_stored", "sample_frames", "stream_rendition"]
