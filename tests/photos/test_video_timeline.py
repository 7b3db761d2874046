"""A video's timeline on its pages (issue 21): the boxes of each moment over the playing
video, text found with its times, labels an editor renamed keeping their times, the
flagged moments' still frames for moderators; and the operations around it: erasure of
every derived file by either path, renditions asked for again when lost, presigned URLs
that last as long as a video plays, and time limits that grow with the video's cap."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from infra.functions.labeler.record import Box, Instance, Label as RecordLabel, LabelRecord, ModerationLabel, TextDetection
from infra.functions.labeler.timeline import (
    FrameAnalysis, VideoFacts, get_content_moderation, get_label_detection, get_text_detection, summary_record,
)
from photos.apply import apply_records
from photos.models import Label, PendingErasure, Photo
from photos.pipelines import frames
from photos.pipelines.local import analyze_photo, photo_mark_analyzing, video_time_limits
from photos.pipelines.tombstones import photos_erased
from photos.renditions import (
    MAX_STILLS, photo_make_stills, photo_make_stream, photo_make_thumbnail, photo_timeline, save_timeline, still_name,
    stream_name, timeline_name,
)
from photos.selectors.timeline import label_segments, player_boxes, renamed, text_times
from photos.services.erasure import photo_delete
from photos.pipelines.erasures import erasure_attempt
from photos.services import photos as photo_services
from photos.services.moderation import photo_moderate
from photos.services.photos import RENDITION_TRIES, photos_sweep_stuck, renditions_sweep
from photos.services.review import labels_decide, labels_merge
from tests.photos.admin.test_moderation import QUEUE, login
from tests.samples import video
from tests.photos.test_video_upload import client_in, owner  # noqa: F401 (fixtures: the same video owner)

pytestmark = pytest.mark.django_db


def uploaded(client, name: str, data: bytes) -> Photo:
    client.post("/photos/", {"photos": [SimpleUploadedFile(name, data)]}, follow=True)
    return Photo.objects.latest("id")


@pytest.fixture
def late_cat(client_in, owner, media_root, fake_queue):
    """1.9 dark seconds, then the cat, sampled every second: analysed by the local detector."""
    photo = uploaded(client_in, "late-cat.mp4", video(seconds=5, size=(640, 480), photo="chelsea", dark_seconds=1.9))
    assert analyze_photo.run(photo.id) == "applied"
    return Photo.objects.get(id=photo.id)


def page_boxes(page: str) -> list[dict]:
    return json.loads(page.split('<script id="video-boxes" type="application/json">')[1].split("</script>")[0])


def test_the_owners_page_draws_each_moments_boxes_over_the_player(late_cat, client_in):
    """Each sampled frame's boxes (GetLabelDetection by TIMESTAMPS, kept in the timeline)
    are handed to the player with the moment they hold for: from their frame until the
    next sampled one. None over the dark start. Used to be: no boxes for a video at all."""
    timeline = photo_timeline(late_cat)
    assert timeline["label_timestamps"]["GetRequestMetadata"]["AggregateBy"] == "TIMESTAMPS"
    frames = timeline["frames"]

    response = client_in.get(f"/photos/{late_cat.uid}/")
    page = response.content.decode()

    boxes = page_boxes(page)
    cats = [b for b in boxes if b["label"] == "Cat"]
    assert cats, boxes
    assert min(b["t"] for b in cats) >= 1900  # nothing boxed while the screen is dark
    for b in cats:
        later = [t for t in frames if t > b["t"]]
        assert b["until"] == (later[0] if later else 5000)
        assert 0 <= b["box"]["left"] < 1 and 0 < b["box"]["width"] <= 1
    assert 'id="video-boxes-shown" checked' in page
    shown = {lb.name for lb in response.context["photo"].visible_labels}
    assert {b["label"] for b in boxes} <= shown  # only what the page lists


def test_a_label_an_editor_renamed_keeps_its_times_and_boxes(late_cat, client_in):
    """Renamed Cat -> Kitten -> Tabby (two audit entries): the chip is Tabby's, with Cat's
    times, and the boxes say Tabby. A rejected label has neither."""
    editor = get_user_model().objects.create_user("ed", password="x", is_staff=True)
    cat = Label.objects.get(photo=late_cat, name="Cat")
    labels_merge(label_ids=[cat.id], into="Kitten", actor=editor)
    labels_merge(label_ids=[Label.objects.get(photo=late_cat, name="Kitten").id], into="Tabby", actor=editor)

    assert renamed(late_cat)["Cat"] == "Tabby"
    page = client_in.get(f"/photos/{late_cat.uid}/").content.decode()

    tabby = page.split('class="labels video-labels"')[1].split("Tabby")[1].split("</li>")[0]
    assert 'data-seek="1900"' in tabby
    labels = {b["label"] for b in page_boxes(page)}
    assert "Tabby" in labels and "Cat" not in labels and "Kitten" not in labels


def test_renames_are_replayed_in_their_order(late_cat):
    """Cat -> Kitten, then back to Cat: Cat keeps its own times; Dog -> Pet then Cat ->
    Dog moves Cat alone (not on to Pet)."""
    editor = get_user_model().objects.create_user("ed", password="x", is_staff=True)

    def rename(name, into):
        labels_merge(label_ids=[Label.objects.get(photo=late_cat, name=name).id], into=into, actor=editor)

    rename("Cat", "Kitten")
    rename("Kitten", "Cat")
    assert "Cat" not in renamed(late_cat)
    Label.objects.create(photo=late_cat, name="Dog", confidence=80.0)
    rename("Dog", "Pet")
    rename("Cat", "Dog")
    moves = renamed(late_cat)
    assert moves["Cat"] == "Dog" and moves["Dog"] == "Pet"


def test_merged_labels_join_their_runs():
    timeline = {"labels": {"Labels": [
        {"Timestamp": 0, "StartTimestampMillis": 0, "EndTimestampMillis": 2000, "Label": {"Name": "Cow"}},
        {"Timestamp": 1000, "StartTimestampMillis": 1000, "EndTimestampMillis": 3000, "Label": {"Name": "Horse"}},
        {"Timestamp": 5000, "StartTimestampMillis": 5000, "EndTimestampMillis": 6000, "Label": {"Name": "Horse"}},
    ]}}

    assert label_segments(timeline, {"Cow": "Horse"}) == {"Horse": [(0, 3000), (5000, 6000)]}
    assert label_segments(timeline) == {"Cow": [(0, 2000)], "Horse": [(1000, 3000), (5000, 6000)]}


def text_frame(ms: int, *lines: str) -> FrameAnalysis:
    box = Box(width=0.3, height=0.1, left=0.1, top=0.2)
    return FrameAnalysis(ms, LabelRecord(bucket="b", key="k", status="LABELED", engine="local", text=tuple(
        TextDetection(text=t, type="LINE", confidence=90.0 + n, box=box) for n, t in enumerate(lines))))


FACTS = VideoFacts(codec="h264", format="MP4", duration_ms=6000, frame_rate=10.0, width=320, height=240)


def test_text_found_in_a_video_is_listed_with_when_it_is_seen(client_in, owner, media_root, fake_queue):
    """GetTextDetection's lines, each once as first written, with its runs over the
    sampled frames; a click seeks. Used to be: the lines without their times."""
    photo = uploaded(client_in, "sign.mp4", video(seconds=3))
    frames = [text_frame(0), text_frame(1000, "EXIT"), text_frame(2000, "exit", "Platform 9"),
              text_frame(3000), text_frame(4000, "EXIT")]
    save_timeline(photo, {"text": get_text_detection(frames, FACTS), "frames": [f.timestamp_ms for f in frames],
                          "labels": {"VideoMetadata": {"DurationMillis": 6000}}})

    lines = text_times(photo_timeline(photo))
    assert [(line["text"], line["spans"]) for line in lines] == [
        ("EXIT", [(1000, 3000), (4000, 6000)]), ("Platform 9", [(2000, 3000)])]
    page = client_in.get(f"/photos/{photo.uid}/").content.decode()
    exit_row = page.split("“EXIT”")[1].split("</li>")[0]
    assert '<button type="button" class="seek" data-seek="4000" title="Play from here">0:04–0:06</button>' in exit_row


def test_player_boxes_are_only_the_shown_labels_and_capped():
    record = LabelRecord(bucket="b", key="k", status="LABELED", engine="local")

    def frame(ms, *names):
        return FrameAnalysis(ms, replace(record, labels=tuple(
            RecordLabel(name=n, confidence=90.0, instances=(Instance(box=Box(left=0.1, top=0.2, width=0.5, height=0.5), confidence=90.0),))
            for n in names)))
    frames = [frame(0, "Dog", "Ghost"), frame(1000, "Dog")]
    timeline = {"label_timestamps": get_label_detection(frames, FACTS, interval_ms=1000, aggregate_by="TIMESTAMPS"),
                "labels": {"VideoMetadata": {"DurationMillis": 6000}}, "frames": [0, 1000]}

    assert player_boxes(timeline, {"Dog"}) == [
        {"t": 0, "until": 1000, "label": "Dog", "box": {"left": 0.1, "top": 0.2, "width": 0.5, "height": 0.5}},
        {"t": 1000, "until": 6000, "label": "Dog", "box": {"left": 0.1, "top": 0.2, "width": 0.5, "height": 0.5}}]
    assert player_boxes({}, {"Dog"}) == []  # analysed before boxes were kept: none, no error


def flag_frames_from(monkeypatch, ms: int) -> None:
    """The real analysis of each frame, with a moderation label added from ``ms`` on."""
    real = frames.analyze

    def analyze(image, client, options):
        record = real(image, client, options=options)
        if int(image.key.rsplit("#t=", 1)[1]) >= ms:
            record = replace(record, moderation_labels=(ModerationLabel(name="Violence", confidence=88.0),))
        return record
    monkeypatch.setattr(frames, "analyze", analyze)


@pytest.fixture
def flagged_late(client_in, owner, media_root, fake_queue, monkeypatch):
    """The late cat video, its frames from 3 s on flagged by the moderation model."""
    flag_frames_from(monkeypatch, 3000)
    photo = uploaded(client_in, "fight.mp4", video(seconds=5, size=(640, 480), photo="chelsea", dark_seconds=1.9))
    assert analyze_photo.run(photo.id) == "applied"
    return Photo.objects.get(id=photo.id)


def test_the_decide_page_shows_still_frames_of_the_flagged_moments(flagged_late, media_root, client):
    """The worker keeps a small still of each flagged segment's first frame; the decide
    page shows it blurred beside its time, served to moderators only. Used to be: times only."""
    photo = flagged_late
    assert photo.moderation_state == Photo.Moderation.FLAGGED
    assert photo_timeline(photo)["moderation_stills"] == [3000]
    still = media_root / still_name(photo, 0)
    with Image.open(still) as image:
        assert image.format == "JPEG" and max(image.size) == 640 and not image.getexif()

    moderator, _ = login("Moderators")
    page = moderator.get(f"{QUEUE}{photo.pk}/decide/").content.decode()
    url = f"{QUEUE}{photo.pk}/flagged/0/"
    assert f'<img class="blurred still" src="{url}" alt="The frame at 0:03"' in page
    served = moderator.get(url)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert b"".join(served.streaming_content) == still.read_bytes()
    assert moderator.get(f"{QUEUE}{photo.pk}/flagged/1/").status_code == 404  # one flagged segment: one still
    assert moderator.get(f"{QUEUE}{photo.pk}/flagged/{MAX_STILLS}/").status_code == 404

    editor, _ = login("Editors")
    assert editor.get(url).status_code == 403
    assert client.get(url).status_code == 302  # the owner, not staff: to the admin's login


def test_erasure_removes_the_stills_too(flagged_late, owner, media_root, django_capture_on_commit_callbacks):
    photo = flagged_late
    assert (media_root / still_name(photo, 0)).exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert photo_delete(photo_id=photo.id, actor=owner)

    assert not list(media_root.rglob(f"{photo.uid}*"))


def test_a_video_erased_from_the_bucket_takes_every_derived_file_with_it(flagged_late, media_root):
    """The tombstone path (an object deleted outside the app) erases the timeline, the
    stream, the poster and the stills as the app's own erasure does. Used to be: the
    thumbnail and the display rendition only, leaving the timeline and stream behind."""
    photo = flagged_late
    photo_make_stream(photo_id=photo.id)
    photo_make_thumbnail(photo_id=photo.id)
    photo.refresh_from_db()
    made = [timeline_name(photo), stream_name(photo), still_name(photo, 0), photo.thumbnail.name]
    assert all((media_root / name).exists() for name in made)

    assert photos_erased(keys=[photo.image.name]) == 1
    pending = PendingErasure.objects.get(key=photo.image.name)
    assert set(made) <= set(pending.names)
    assert erasure_attempt(pending.id)

    assert not list(media_root.rglob(f"{photo.uid}*"))


def test_a_moderator_sees_no_stills_of_a_video_its_owner_trashed_after_the_case(flagged_late):
    """Staff see a trashed item only while it has an open case; its stills follow the
    same rule as its player."""
    photo = flagged_late
    moderator, user = login("Moderators")
    url = f"{QUEUE}{photo.pk}/flagged/0/"
    assert moderator.get(url).status_code == 200
    photo_moderate(photo_id=photo.id, decision="clear", actor=user)
    Photo.objects.filter(id=photo.id).update(trashed_at=timezone.now())

    assert moderator.get(url).status_code == 404
    assert moderator.get(f"/photos/{photo.uid}/stream/").status_code == 404


def test_lost_renditions_are_asked_for_again_a_few_times(client_in, owner, media_root, fake_queue):
    """A video uploaded while the broker was down has no stream and no poster: the
    renditions sweep asks again, at most RENDITION_TRIES times a day; a made stream is
    not asked for; an upload in its first minutes is left to its own task."""
    clip = uploaded(client_in, "a.mp4", video(seconds=2))
    made = uploaded(client_in, "b.mp4", video(seconds=2, photo="astronaut"))
    photo_make_stream(photo_id=made.id)
    photo_make_thumbnail(photo_id=made.id)
    fake_queue.sent.clear()

    assert renditions_sweep() == {"thumbnails": 0, "streams": 0}  # too young
    later = timezone.now() + timedelta(minutes=30)
    assert renditions_sweep(now=later) == {"thumbnails": 1, "streams": 1}
    assert sorted(fake_queue.sent) == [("photos.tasks.make_stream", (clip.id,)), ("photos.tasks.make_thumbnail", (clip.id,))]
    # The next run, while those requests may still be queued or running: nothing again.
    assert renditions_sweep(now=later) == {"thumbnails": 0, "streams": 0}
    for _ in range(RENDITION_TRIES):
        cache.delete_many([f"rendition-pending:{w}:{clip.id}" for w in ("thumbnail", "stream")])  # they ran, in vain
        renditions_sweep(now=later)
    assert renditions_sweep(now=later) == {"thumbnails": 0, "streams": 0}
    assert len(fake_queue.sent) == 2 * RENDITION_TRIES


def test_the_renditions_sweep_walks_past_a_batch_it_cannot_help(client_in, owner, media_root, fake_queue, monkeypatch):
    """More missing thumbnails than one batch, the first ones given up on: later runs
    still reach the rest (a cursor), and come round to the start again."""
    monkeypatch.setattr(photo_services, "RENDITION_SWEEP_BATCH", 2)
    photos = [Photo.objects.create(owner=owner, image=f"uploads/x/{n}.jpg", size=1) for n in range(5)]
    later = timezone.now() + timedelta(minutes=30)
    for photo in photos[:2]:
        cache.set(f"rendition-tries:thumbnail:{photo.id}", RENDITION_TRIES, 3600)  # given up on

    asked = [renditions_sweep(now=later)["thumbnails"] for _ in range(3)]

    assert asked == [0, 2, 1]
    assert sorted(args[0] for _, args in fake_queue.sent) == [p.id for p in photos[2:]]


def test_a_stream_made_already_is_never_encoded_again(client_in, owner, media_root, fake_queue):
    photo = uploaded(client_in, "a.mp4", video(seconds=2))
    name = photo_make_stream(photo_id=photo.id)
    made = (media_root / name).stat().st_mtime_ns

    assert photo_make_stream(photo_id=photo.id) == name
    assert (media_root / name).stat().st_mtime_ns == made


def test_a_video_gets_time_limits_that_cover_its_frame_cap(client_in, owner, media_root, fake_queue, settings,
                                                           django_capture_on_commit_callbacks):
    """A photo's analysis has 120 s; a video's grows with PHOTOS_VIDEO_MAX_FRAMES, and
    neither the sweep nor another claim takes it from its worker before that. Used to
    be: 120 s for any video, and a second worker claiming it after 180 s."""
    settings.PHOTOS_VIDEO_MAX_FRAMES = 600
    soft, hard = video_time_limits()
    assert soft == 120 + 2 * 600 and hard == soft + 30
    with django_capture_on_commit_callbacks(execute=True):
        photo = uploaded(client_in, "long.mp4", video(seconds=2))
    assert ("photos.tasks.analyze_photo", {"soft_time_limit": soft, "time_limit": hard}) in fake_queue.options

    Photo.objects.filter(id=photo.id).update(status=Photo.Status.ANALYZING,
                                             updated_at=timezone.now() - timedelta(seconds=400))
    assert not photo_mark_analyzing(photo_id=photo.id)  # still within its time: not abandoned
    assert photos_sweep_stuck(stuck_after_seconds=0, analyzing_after_seconds=180)["found"] == 0
    Photo.objects.filter(id=photo.id).update(updated_at=timezone.now() - timedelta(seconds=hard + 60))
    assert photos_sweep_stuck(stuck_after_seconds=0, analyzing_after_seconds=180)["found"] == 1


def test_a_timeline_without_stills_gets_them_made_from_the_stream(late_cat, media_root, fake_queue,
                                                                  django_capture_on_commit_callbacks):
    """In AWS, Rekognition Video's timeline has no stills: when its record flags the
    video, the worker decodes the flagged moments from the stream rendition and names
    them in the timeline, for the decide page. Used to be: times only, in AWS."""
    photo = late_cat
    photo_make_stream(photo_id=photo.id)
    timeline = photo_timeline(photo)
    flagged = [FrameAnalysis(ms, LabelRecord(bucket="b", key=photo.key, status="LABELED", engine="rekognition",
                                             moderation_labels=(ModerationLabel(name="Violence", confidence=c),)))
               for ms, c in ((2000, 80.0), (4000, 95.0))]
    save_timeline(photo, {**timeline, "moderation": get_content_moderation(flagged, FACTS, interval_ms=1000),
                          "moderation_stills": []})
    # After the fixture's own analysis, whenever the test runs (a fixed time here once made
    # the record "older" than the analysis and the test fail after 09:00 that day).
    stamp = (timezone.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with django_capture_on_commit_callbacks(execute=True):
        apply_records([summary_record(flagged, LabelRecord(bucket="b", key=photo.key, status="LABELED",
                                                           engine="rekognition", analyzed_at=stamp, updated_at=stamp))])
    assert ("photos.tasks.make_stills", (photo.id,)) in fake_queue.sent

    assert photo_make_stills(photo_id=photo.id) == [4000, 2000]  # strongest first
    assert photo_timeline(photo)["moderation_stills"] == [4000, 2000]
    with Image.open(media_root / still_name(photo, 0)) as image:
        assert image.format == "JPEG" and max(image.size) <= 640
    assert photo_make_stills(photo_id=photo.id) == []  # made: not again


def test_a_video_is_called_a_video_wherever_the_library_lists_or_asks(client_in, owner, media_root, fake_queue):
    """Found by a new user's trial: the live card drawn during upload had no "▶ 0:02"
    badge (the status data had no kind), the trash had none, and trashing asked to "Move
    1 photo to the trash?"; a text file named .mp4 was "not an image"."""
    clip = uploaded(client_in, "clip.mp4", video(seconds=2))

    status = client_in.get("/photos/status/", {"ids": str(clip.uid)}).json()["photos"][0]
    assert (status["kind"], status["duration"]) == ("video", "0:02")
    assert "Move 1 video to the trash?" in client_in.get(f"/photos/{clip.uid}/delete/").content.decode()
    client_in.post(f"/photos/{clip.uid}/delete/")
    assert '<span class="video-badge">▶ 0:02</span>' in client_in.get("/photos/trash/").content.decode()

    page = client_in.post("/photos/", {"photos": [SimpleUploadedFile("notes.mp4", b"just some text")]},
                          follow=True).content.decode()
    assert "notes.mp4 is not a video we can read (corrupt, or not a video)." in page


def test_an_editor_sees_each_moments_boxes_over_the_video_under_review(late_cat):
    """Found by a new user's trial: the review page drew no boxes over a video. It now
    hands its player the same moments as the owner's page (not rejected labels), and the
    label toggles cover them."""
    editor, user = login("Editors")
    page = editor.get(reverse("admin:photos_photo_review", args=[late_cat.pk])).content.decode()

    boxes = json.loads(page.split('<script id="video-boxes" type="application/json">')[1].split("</script>")[0])
    assert {b["label"] for b in boxes} >= {"Cat"} and min(b["t"] for b in boxes if b["label"] == "Cat") >= 1900
    assert '<input type="checkbox" checked data-toggle="Cat">' in page

    labels_decide(label_ids=[Label.objects.get(photo=late_cat, name="Cat").id], decision="rejected", actor=user)
    page = editor.get(reverse("admin:photos_photo_review", args=[late_cat.pk])).content.decode()
    assert '"label": "Cat"' not in page
