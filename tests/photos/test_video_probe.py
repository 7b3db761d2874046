"""What a video is, read from its container before anything is stored, and the frame that
stands for it (issue 21: upload and validation, the poster). Real containers and codecs,
made by PyAV's encoders from the sample photos."""

from __future__ import annotations

import io

import numpy as np
import pytest

from photos.video import DARK_LUMA, VideoError, frame_quality, looks_like_video, poster, probe, sample_frames
from PIL import Image

from tests.samples import audio_only, encode, heic, photo_bytes, video

LIMITS = {"max_seconds": 15 * 60, "max_pixels": 4096 * 2304, "min_side": 80}


def probed(data: bytes, **limits):
    return probe(io.BytesIO(data), **{**LIMITS, **limits})


@pytest.mark.parametrize(
    ("container", "kind", "codec"),
    [("mp4", "MP4", "h264"), ("hevc.mov", "MOV", "hevc"), ("hevc.mp4", "MP4", "hevc"), ("webm", "WEBM", "vp9")],
)
def test_phone_and_web_videos_are_read_from_their_container(container, kind, codec):
    data = video(container=container, seconds=3, size=(320, 240), audio=container != "webm")
    result = probed(data)

    assert (result.container, result.codec, result.width, result.height) == (kind, codec, 320, 240)
    assert result.duration_ms == 3000 and result.frame_rate == 10.0 and result.rotation == 0
    assert result.has_audio is (container != "webm")


def test_a_portrait_phone_video_is_its_displayed_size_and_its_poster_upright():
    """A phone held upright stores landscape frames and a display matrix (turn 90°
    clockwise). The poster must be the upright picture: red at the top."""
    upright = np.zeros((320, 240, 3), np.uint8)
    upright[:160] = (220, 30, 30)
    upright[160:] = (30, 30, 220)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # what the sensor wrote
    data = stored_video(stored, rotation=90)

    result = probed(data)
    image, _ = poster(io.BytesIO(data), result)
    pixels = np.asarray(image)

    assert (result.width, result.height, result.rotation) == (240, 320, 90)
    assert image.size == (240, 320)
    assert pixels[40, 120, 0] > 150 and pixels[280, 120, 2] > 150  # red on top, blue below


def stored_video(frame_rgb: np.ndarray, *, rotation: int, frames: int = 20) -> bytes:
    import av

    buffer = io.BytesIO()
    height, width = frame_rgb.shape[:2]
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(-rotation)
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_the_poster_skips_a_dark_opening():
    data = video(seconds=4, dark_seconds=1.5)
    result = probed(data)
    image, at_ms = poster(io.BytesIO(data), result)

    assert at_ms >= 1500
    assert frame_quality(np.asarray(image))[0] > DARK_LUMA


def test_the_poster_prefers_a_sharp_frame_to_a_blurred_one():
    import cv2

    sharp = np.asarray(Image.open(io.BytesIO(photo_bytes("astronaut"))).convert("RGB").resize((320, 240)))
    blurred = cv2.GaussianBlur(sharp, (31, 31), 12)
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "5"})  # a keyframe every half second
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(40):
            rgb = blurred if i < 30 else sharp  # three blurred seconds, then one sharp second
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = buffer.getvalue()
    image, at_ms = poster(io.BytesIO(data), probed(data))

    assert at_ms >= 3000
    assert frame_quality(np.asarray(image))[1] > 3 * frame_quality(blurred)[1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (audio_only(), "has no video track (is it audio only?)."),
        (video(seconds=4)[:3000], "is not a video we can read (corrupt, or not a video)."),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, "is not a video we can read (corrupt, or not a video)."),
        (video(frame_times=[i * 3600.0 for i in range(11)]), "is 10:00:00 long; the limit is 15:00."),
        (video(size=(320, 64)), "is 320×64 pixels a frame; videos must be at least 80 pixels on each side."),
    ],
    ids=["audio-only", "truncated", "corrupt", "a 10-hour header", "too small"],
)
def test_what_is_not_a_video_we_accept_is_refused_with_the_reason(data, message):
    with pytest.raises(VideoError) as refused:
        probed(data)

    assert refused.value.message == message


def test_a_truncated_recording_whose_header_survived_is_refused(tmp_path):
    """moov first (as phones and `-movflags faststart` write): the header reads, the end does not."""
    import av

    path = tmp_path / "recording.mp4"  # faststart rewrites the file: a real one, not a buffer
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "10"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(60):
            frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: every frame costs bytes
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data[:4096]  # the header first
    assert probed(data).duration_ms == 6000

    with pytest.raises(VideoError, match="truncated or corrupt"):
        probed(data[: len(data) // 2])


def test_frame_size_and_length_limits_come_from_the_caller():
    data = video(seconds=3, size=(320, 240))

    with pytest.raises(VideoError, match=r"is 0:03 long; the limit is 0:02\."):
        probed(data, max_seconds=2)
    with pytest.raises(VideoError, match=r"is 320×240 pixels a frame; the limit is 0\.1 MP\."):
        probed(data, max_pixels=50_000)


def test_only_the_containers_we_accept_are_sniffed_as_video():
    assert looks_like_video(video()[:16]) and looks_like_video(video(container="webm")[:16])
    assert looks_like_video(video(container="hevc.mov")[:16])
    assert not looks_like_video(photo_bytes("chelsea")[:16]) and not looks_like_video(encode(Image.new("RGB", (90, 90)))[:16])
    # HEIC and AVIF are ISO base media files too: their brand tells them apart
    assert not looks_like_video(encode(Image.new("RGB", (90, 90)), "AVIF")[:16])
    assert not looks_like_video(heic(Image.new("RGB", (90, 90)))[:16])


def test_the_samples_reach_the_end_however_many_keyframes_there_are():
    """Scene-cut keyframes come only from what the schedule leaves: a video with a
    keyframe every half second used to spend the cap on them and never see its end."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "5", "keyint_min": "5"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(100):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((240, 320, 3), i * 2, np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = buffer.getvalue()
    result = probed(data)

    times = [ms for ms, _ in sample_frames(io.BytesIO(data), result, interval_ms=1000, max_frames=10)]
    assert times == list(range(0, 10_000, 1000))


def test_a_matroska_video_with_h264_is_not_taken_for_webm():
    with pytest.raises(VideoError, match="Matroska"):
        probed(video(container="mkv"))


def test_heif_and_avif_brands_are_never_sniffed_as_video():
    for brand in (b"mif2", b"avio", b"hevs", b"heic", b"avif"):
        assert not looks_like_video(b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00")
    assert looks_like_video(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00")
