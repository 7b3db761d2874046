"""Videos in the library (issue 21): uploaded beside photos through the same form and API,
checked before anything is stored, kept as uploaded, given a poster, played with byte
ranges through the same permission checks. Used to be: "is not an image we can read"."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from infra.functions.labeler.record import LabelRecord
from infra.functions.labeler.record import ModerationLabel as RecordModeration
from infra.functions.labeler.timeline import FrameAnalysis, VideoFacts, get_content_moderation, summary_record
from photos.apply import apply_records
from photos.models import Label, Photo
from photos.pipelines.local import analyze_photo
from photos.renditions import photo_make_stream, photo_make_thumbnail, photo_timeline, save_timeline, timeline_name
from photos.video import probe
from photos.services.erasure import photo_delete
from tests.photos.admin.test_moderation import QUEUE, login
from tests.photos.analysis.test_local_rekognition import assert_valid_response
from tests.samples import audio_only, photo_bytes, video

pytestmark = pytest.mark.django_db

MY_PHOTOS = "/photos/"


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("filmer", password="pw-filmer-123")


@pytest.fixture
def client_in(client, owner):
    client.force_login(owner)
    return client


def upload(client, *files):
    return client.post(MY_PHOTOS, {"photos": [SimpleUploadedFile(n, d) for n, d in files]}, follow=True)


@pytest.fixture
def clip(client_in, owner, media_root, fake_queue):
    data = video(container="mp4", seconds=3, size=(320, 240), audio=True)
    upload(client_in, ("IMG_0042.MP4", data))
    return Photo.objects.get(owner=owner), data


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_phone_video_is_stored_as_uploaded_with_what_its_container_says(clip, media_root):
    photo, data = clip

    assert photo.kind == Photo.Kind.VIDEO and photo.is_video
    assert (photo.content_type, photo.original_filename, photo.size) == ("video/mp4", "IMG_0042.MP4", len(data))
    assert (photo.width, photo.height, photo.duration_ms, photo.video_codec) == (320, 240, 3000, "h264")
    assert photo.image.name.endswith(f"{photo.uid}.mp4")
    assert (media_root / photo.image.name).read_bytes() == data


@pytest.mark.parametrize(
    ("name", "container", "content_type", "codec"),
    [("clip.mov", "hevc.mov", "video/quicktime", "hevc"), ("clip.webm", "webm", "video/webm", "vp9")],
)
def test_iphone_hevc_and_web_videos_are_accepted(name, container, content_type, codec, client_in, owner, media_root,
                                                 fake_queue):
    upload(client_in, (name, video(container=container)))

    photo = Photo.objects.get(owner=owner)
    assert (photo.kind, photo.content_type, photo.video_codec) == (Photo.Kind.VIDEO, content_type, codec)


def test_its_poster_is_an_upright_metadata_free_jpeg_thumbnail(clip, media_root):
    photo, _ = clip

    name = photo_make_thumbnail(photo_id=photo.id)
    photo.refresh_from_db()
    poster = Image.open(media_root / name)
    assert poster.format == "JPEG" and poster.size == (320, 240)
    assert not poster.getexif() and photo.poster_ms is not None


def test_a_mixed_batch_keeps_the_good_files_and_says_why_for_each_bad_one(client_in, owner, media_root, fake_queue):
    page = upload(
        client_in,
        ("dog.jpg", photo_bytes("chelsea")),
        ("walk.mp4", video(seconds=2)),
        ("song.m4a", audio_only()),
        ("broken.mp4", video(seconds=4)[:3000]),
    ).content.decode()

    assert sorted(Photo.objects.filter(owner=owner).values_list("original_filename", "kind")) == [
        ("dog.jpg", "photo"), ("walk.mp4", "video")]
    assert "song.m4a has no video track (is it audio only?). Upload MP4, MOV or WebM videos." in page
    assert "broken.mp4 is not a video we can read (corrupt, or not a video). Upload MP4, MOV or WebM videos." in page


def test_the_same_video_twice_is_refused_before_it_is_decoded(client_in, owner, media_root, fake_queue, monkeypatch):
    data = video(seconds=2)
    upload(client_in, ("a.mp4", data))
    page = upload(client_in, ("again.mp4", data)).content.decode()

    assert Photo.objects.filter(owner=owner).count() == 1
    assert "again.mp4 is already in your photos (as a.mp4)." in page


def test_video_limits_come_from_settings(client_in, owner, media_root, fake_queue, settings):
    settings.PHOTOS_MAX_VIDEO_SECONDS = 2
    settings.PHOTOS_MAX_VIDEO_BYTES = 10_000_000
    long_page = upload(client_in, ("long.mp4", video(seconds=3))).content.decode()
    settings.PHOTOS_MAX_VIDEO_BYTES = 1000
    big_page = upload(client_in, ("big.mp4", video(seconds=1))).content.decode()

    assert not Photo.objects.filter(owner=owner).exists()
    assert "long.mp4 is 0:03 long; the limit is 0:02." in long_page
    assert "big.mp4 is" in big_page and "the limit for videos is 1000" in big_page


def test_a_video_is_analysed_into_a_timeline_in_rekognition_videos_shapes(client_in, owner, media_root, fake_queue):
    """Four seconds of the cat photo panned: sampled every second, each frame through the
    same local detector as a photo; Rekognition Video's three responses kept beside the
    video (validated against botocore's model), the summary applied as a photo's labels."""
    upload(client_in, ("cat.mp4", video(seconds=4, size=(640, 480), photo="chelsea")))
    photo = Photo.objects.get(owner=owner)

    assert analyze_photo.run(photo.id) == "applied"
    photo.refresh_from_db()
    assert photo.status == Photo.Status.LABELED
    assert Label.objects.filter(photo=photo, name="Cat").exists()
    timeline = photo_timeline(photo)
    assert timeline["frames"] == [0, 1000, 2000, 3000]
    assert_valid_response("get_label_detection", timeline["labels"])
    assert_valid_response("get_content_moderation", timeline["moderation"])
    assert_valid_response("get_text_detection", timeline["text"])
    assert timeline["labels"]["VideoMetadata"] == {
        "Codec": "h264", "DurationMillis": 4000, "Format": "QuickTime / MOV", "FrameRate": 10.0,
        "FrameHeight": 480, "FrameWidth": 640}
    cat = [e for e in timeline["labels"]["Labels"] if e["Label"]["Name"] == "Cat"]
    assert cat and cat[0]["StartTimestampMillis"] == 0 and cat[-1]["EndTimestampMillis"] <= 4000
    assert all(e["DurationMillis"] == e["EndTimestampMillis"] - e["StartTimestampMillis"] for e in cat)


def test_erasing_a_video_erases_its_timeline_and_stream(client_in, owner, media_root, fake_queue,
                                             django_capture_on_commit_callbacks):
    upload(client_in, ("cat.mp4", video(seconds=2, photo="chelsea")))
    photo = Photo.objects.get(owner=owner)
    analyze_photo.run(photo.id)
    photo_make_thumbnail(photo_id=photo.id)
    names = [photo.image.name, timeline_name(photo), photo_make_stream(photo_id=photo.id)]
    assert all((media_root / n).exists() for n in names)

    with django_capture_on_commit_callbacks(execute=True):  # the erasure runs after the commit
        assert photo_delete(photo_id=photo.id, actor=owner)
    assert not any((media_root / n).exists() for n in names)
    assert not list((media_root / "thumbnails").glob(f"{photo.uid}*"))


def test_the_owners_page_plays_it_with_its_poster(clip, client_in):
    photo, _ = clip
    photo_make_thumbnail(photo_id=photo.id)

    page = client_in.get(f"/photos/{photo.uid}/").content.decode()

    assert f'poster="/photos/{photo.uid}/thumbnail/"' in page
    assert f'<source src="/photos/{photo.uid}/image/" type="video/mp4">' in page
    assert "<dt>Length</dt><dd class=\"duration\">0:03</dd>" in page and "H.264 video" in page
    library = client_in.get(MY_PHOTOS).content.decode()
    assert '<span class="video-badge">▶ 0:03</span>' in library


def test_byte_ranges_are_answered_as_a_player_seeks(clip, client_in):
    photo, data = clip
    url = f"/photos/{photo.uid}/image/"

    whole = client_in.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and body(whole) == data

    part = client_in.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and body(part) == data[100:200]
    assert (part["Content-Range"], part["Content-Length"], part["Content-Type"]) == (
        f"bytes 100-199/{len(data)}", "100", "video/mp4")

    tail = client_in.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and body(tail) == data[-10:]
    open_ended = client_in.get(url, HTTP_RANGE=f"bytes={len(data) - 5}-")
    assert body(open_ended) == data[-5:]
    clipped = client_in.get(url, HTTP_RANGE=f"bytes=0-{len(data) * 2}")
    assert clipped.status_code == 206 and body(clipped) == data

    past = client_in.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{len(data)}"
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=9-3"):  # whole file, as HTTP allows
        response = client_in.get(url, HTTP_RANGE=ignored)
        assert response.status_code == 200 and body(response) == data


def test_who_gets_the_video_itself(clip, client, django_user_model):
    """The original goes to its owner only (and superusers); anyone else allowed to see
    it gets the poster, and a private video is nobody else's."""
    photo, data = clip
    photo_make_thumbnail(photo_id=photo.id)
    url = f"/photos/{photo.uid}/image/"
    stranger = django_user_model.objects.create_user("stranger", password="pw-stranger-1")
    staff = django_user_model.objects.create_user("mod", password="pw-mod-1", is_staff=True)
    admin = django_user_model.objects.create_superuser("root2", password="pw-root-1")

    client.logout()
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    client.force_login(admin)
    assert body(client.get(url, HTTP_RANGE="bytes=0-9")) == data[:10]
    Photo.objects.filter(id=photo.id).update(visibility=Photo.Visibility.PUBLIC, status=Photo.Status.LABELED)
    client.force_login(stranger)
    shown = client.get(url)
    assert shown.status_code == 200 and shown["Content-Type"] == "image/jpeg"  # the poster, not the file
    assert Image.open(io.BytesIO(body(shown))).format == "JPEG"
    client.force_login(staff)
    assert client.get(url)["Content-Type"] == "image/jpeg"


def test_the_api_takes_videos_and_says_what_each_item_is(client_in, owner, media_root, fake_queue):
    response = client_in.post("/api/photos/", {"photos": [SimpleUploadedFile("walk.webm", video(container="webm"))]})

    assert response.status_code == 201
    listed = client_in.get(f"/api/photos/{response.json()['accepted'][0]['id']}/").json()
    assert (listed["kind"], listed["duration_ms"], listed["width"]) == ("video", 3000, 320)
    assert listed["title"] == "Untitled video"  # not yet named by labels


def test_an_iphone_hevc_video_gets_a_stream_rendition_every_browser_plays(client_in, owner, media_root, fake_queue,
                                                                         django_capture_on_commit_callbacks):
    """Chromium does not play HEVC: a worker converts it to H.264 in MP4, upright and
    without the original's metadata; the page offers it first, the original second."""
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_in, ("IMG_1234.MOV", video(container="hevc.mov", seconds=2, size=(320, 240), rotation=90,
                                                 audio=True)))
    photo = Photo.objects.get(owner=owner)
    assert ("photos.tasks.make_stream", (photo.id,)) in fake_queue.sent
    page = client_in.get(f"/photos/{photo.uid}/").content.decode()
    assert "Being converted so that every browser can play it" in page and "/stream/" not in page
    assert client_in.get(f"/photos/{photo.uid}/stream/").status_code == 404  # not made yet

    name = photo_make_stream(photo_id=photo.id)

    made = probe(str(media_root / name), max_seconds=60, max_pixels=10**8, min_side=1)
    assert (made.codec, made.container, made.width, made.height, made.rotation, made.has_audio) == (
        "h264", "MP4", 240, 320, 0, True)
    page = client_in.get(f"/photos/{photo.uid}/").content.decode()
    assert page.index(f'src="/photos/{photo.uid}/stream/"') < page.index(f'src="/photos/{photo.uid}/image/"')
    streamed = client_in.get(f"/photos/{photo.uid}/stream/", HTTP_RANGE="bytes=0-99")
    assert streamed.status_code == 206 and streamed["Content-Type"] == "video/mp4"


def test_the_public_gallery_plays_the_stream_never_the_original(clip, client, django_user_model, media_root):
    photo, data = clip
    photo_make_thumbnail(photo_id=photo.id)
    name = photo_make_stream(photo_id=photo.id)
    Photo.objects.filter(id=photo.id).update(visibility=Photo.Visibility.PUBLIC, status=Photo.Status.LABELED)
    client.logout()

    page = client.get(f"/gallery/{photo.uid}/").content.decode()
    assert f'src="/photos/{photo.uid}/stream/"' in page
    streamed = client.get(f"/photos/{photo.uid}/stream/")
    assert body(streamed) == (media_root / name).read_bytes() != data
    assert client.get(f"/photos/{photo.uid}/image/")["Content-Type"] == "image/jpeg"  # the poster


def test_a_moderator_sees_when_in_a_flagged_video_and_watches_its_stream(clip, media_root):
    """A flagged frame flags the video (the summary record); the decide page shows the
    flagged moments from the timeline, strongest first, and plays the stream rendition."""
    photo, _ = clip
    photo_make_stream(photo_id=photo.id)
    # After the fixture's own analysis, whenever the test runs (a fixed time here once made
    # the record "older" than the analysis and the test fail after 09:00 that day).
    stamp = (timezone.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frames = [FrameAnalysis(ms, LabelRecord(bucket="b", key=photo.key, status="LABELED", engine="local",
                                             moderation_labels=(RecordModeration(name="Explicit", confidence=c),)))
              for ms, c in ((1000, 91.0), (2000, 97.0))]
    facts = VideoFacts(codec="h264", format="MP4", duration_ms=3000, frame_rate=10.0, width=320, height=240)
    save_timeline(photo, {"moderation": get_content_moderation(frames, facts, interval_ms=1000)})
    apply_records([summary_record(frames, LabelRecord(bucket="b", key=photo.key, status="LABELED", engine="local",
                                                      analyzed_at=stamp, updated_at=stamp))])
    photo.refresh_from_db()
    assert photo.moderation_state == Photo.Moderation.FLAGGED

    client, _ = login("Moderators")
    page = client.get(f"{QUEUE}{photo.pk}/decide/").content.decode()

    assert f'src="/photos/{photo.uid}/stream/"' in page and 'class="blurred strong"' in page
    assert '<button type="button" class="seek" data-seek="1000">0:01–0:03</button> Explicit: 97.0 %' in page
    assert client.get(f"/photos/{photo.uid}/stream/", HTTP_RANGE="bytes=0-9").status_code == 206


def test_a_search_says_when_in_a_video_the_thing_is_seen_and_the_link_starts_there(client_in, owner, media_root,
                                                                                  fake_queue):
    """1.9 dark seconds, then the cat: the cut is a keyframe, sampled at 1.9 s besides the
    whole seconds: "Cat at 0:02" on the card (1,900 ms), and its page starts there."""
    upload(client_in, ("late-cat.mp4", video(seconds=5, size=(640, 480), photo="chelsea", dark_seconds=1.9)))
    photo = Photo.objects.get(owner=owner)
    assert analyze_photo.run(photo.id) == "applied"

    page = client_in.get(MY_PHOTOS, {"q": "cat"}).content.decode()
    assert f'<a class="seen-at" href="/photos/{photo.uid}/?t=1900">Cat at 0:02</a>' in page
    assert "seen-at" not in client_in.get(MY_PHOTOS).content.decode()  # only on a search
    assert "seen-at" not in client_in.get(MY_PHOTOS, {"q": "dog"}).content.decode()
    detail = client_in.get(f"/photos/{photo.uid}/", {"t": "1900"}).content.decode()
    assert f'src="/photos/{photo.uid}/image/#t=1.9"' in detail
    for bad in ("-5", "abc", "999999999"):  # outside the video, or not a time: from the start
        assert "#t=" not in client_in.get(f"/photos/{photo.uid}/", {"t": bad}).content.decode()


def test_a_long_video_is_not_refused_for_bytes_that_look_like_a_tag(client_in, owner, media_root, fake_queue):
    """Gigabytes of compressed data hold "<svg" by chance; a video is only ever served as
    video/* with nosniff, so it is not scanned for markup (photos still are)."""
    upload(client_in, ("chance.mp4", video(seconds=2) + b"<svg onload=x>"))

    assert Photo.objects.filter(owner=owner, kind=Photo.Kind.VIDEO).exists()


def test_nobody_else_makes_a_poster_in_a_request(clip, client, django_user_model):
    """Everyone but the owner gets the poster the worker made: 404 until it exists, never
    a decode of the video inside a web request."""
    photo, _ = clip
    Photo.objects.filter(id=photo.id).update(visibility=Photo.Visibility.PUBLIC, status=Photo.Status.LABELED)
    client.logout()

    assert client.get(f"/photos/{photo.uid}/display/").status_code == 404
    photo_make_thumbnail(photo_id=photo.id)
    assert client.get(f"/photos/{photo.uid}/display/")["Content-Type"] == "image/jpeg"


def test_an_absurd_range_gets_the_whole_file_not_an_error(clip, client_in):
    photo, data = clip

    response = client_in.get(f"/photos/{photo.uid}/image/", HTTP_RANGE="bytes=" + "9" * 25 + "-")
    assert response.status_code == 200 and body(response) == data


def test_an_h264_mov_is_offered_to_browsers_as_mp4(client_in, owner, media_root, fake_queue):
    upload(client_in, ("clip.mov", video(container="mov")))
    photo = Photo.objects.get(owner=owner)

    assert photo.content_type == "video/quicktime"
    assert f'<source src="/photos/{photo.uid}/image/" type="video/mp4">' in client_in.get(f"/photos/{photo.uid}/").content.decode()


@pytest.fixture
def late_cat(client_in, owner, media_root, fake_queue):
    """1.9 dark seconds, then the cat; analysed by the local detector."""
    upload(client_in, ("late-cat.mp4", video(seconds=5, size=(640, 480), photo="chelsea", dark_seconds=1.9)))
    photo = Photo.objects.get(owner=owner)
    assert analyze_photo.run(photo.id) == "applied"
    return Photo.objects.get(id=photo.id)


def test_the_public_gallery_says_when_too_and_starts_there(late_cat, client):
    photo_make_thumbnail(photo_id=late_cat.id)
    Photo.objects.filter(id=late_cat.id).update(visibility=Photo.Visibility.PUBLIC)
    client.logout()

    cards = client.get("/gallery/", {"q": "cat"}).content.decode()
    assert f'<a class="seen-at" href="/gallery/{late_cat.uid}/?t=1900">Cat at 0:02</a>' in cards
    assert '<span class="video-badge">▶ 0:05</span>' in cards
    page = client.get(f"/gallery/{late_cat.uid}/", {"t": "1900"}).content.decode()
    assert f'src="/photos/{late_cat.uid}/stream/#t=1.9"' in page


def test_an_editor_reviews_a_videos_labels_with_when_each_is_seen(late_cat):
    from django.urls import reverse

    client, _ = login("Editors")
    page = client.get(reverse("admin:photos_photo_review", args=[late_cat.pk])).content.decode()

    assert f'src="/photos/{late_cat.uid}/stream/"' in page
    assert 'class="box"' not in page.split('id="stage"')[1].split("</div>")[0]  # no boxes over a whole video
    cat_row = page.split('data-name="Cat"')[1].split("</li>")[0]
    assert '<button type="button" class="seek" data-seek="1900" title="Play from here">0:02–0:05</button>' in cat_row
