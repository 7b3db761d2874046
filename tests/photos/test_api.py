"""The JSON API: what it shows, to whom, uploads, and schemathesis fuzzing every GET
operation against the API's own OpenAPI schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, settings as hypothesis_settings

from mediaapp.wsgi import application
from photos.api import schema_document
from photos.models import Label, Photo
from tests.records import analysed_photo
from tests.samples import photo_bytes

pytestmark = pytest.mark.django_db


def analysed(name, labels, **fields):
    return analysed_photo(name, labels, width=640, height=480, **fields)


def filename(result: dict) -> str:
    """The file name behind an API result (the API itself never says it)."""
    return Photo.objects.get(uid=result["id"]).original_filename


@pytest.fixture
def photos():
    dog = analysed("dog.jpg", {"Dog": (95.0, ["Animal"]), "Beach": (90.0, [])})
    cat = analysed("cat.jpg", {"Cat": (92.0, ["Animal"])})
    Label.objects.filter(name__in=["Dog", "Cat"]).update(review_state="approved")
    hidden = analysed("hidden.jpg", {"Dog": (99.0, ["Animal"])})
    Photo.objects.filter(pk=hidden.pk).update(moderation_state="removed")
    return {"dog": dog, "cat": cat, "hidden": hidden}


def test_list_shows_public_photos_with_the_labels_the_gallery_shows(client, photos):
    data = client.get("/api/photos/").json()

    by_name = {filename(p): p for p in data["results"]}
    assert set(by_name) == {"dog.jpg", "cat.jpg"}
    assert by_name["dog.jpg"]["title"] == "Dog and Beach" and "filename" not in by_name["dog.jpg"]  # no file names
    # What the gallery shows, approved ones marked: a search result always says why it matched.
    assert by_name["dog.jpg"]["labels"] == [{"name": "Dog", "confidence": 95.0, "approved": True},
                                            {"name": "Beach", "confidence": 90.0, "approved": False}]
    assert by_name["dog.jpg"]["image_url"] == f"/photos/{photos['dog'].uid}/image/"


@pytest.mark.parametrize(("q", "expected"), [("Animal", {"cat.jpg", "dog.jpg"}), ("Animal NOT Cat", {"dog.jpg"}), ("cow", set())])
def test_label_search(client, photos, q, expected):
    assert {filename(p) for p in client.get("/api/photos/", {"q": q}).json()["results"]} == expected


def test_detail_is_404_for_anything_not_public(client, photos):
    assert client.get(f"/api/photos/{photos['dog'].uid}/").json()["id"] == str(photos["dog"].uid)
    assert client.get(f"/api/photos/{photos['hidden'].uid}/").status_code == 404
    not_an_id = client.get("/api/photos/not-a-uuid/")
    assert (not_an_id.status_code, not_an_id["Content-Type"]) == (404, "application/json")
    assert client.get("/gallery/not-a-uuid/")["Content-Type"].startswith("text/html")


def test_nul_in_a_search_is_harmless(client, photos):
    response = client.get("/api/photos/", {"q": "Dog\x00"})

    assert response.status_code == 200
    assert [filename(p) for p in response.json()["results"]] == ["dog.jpg"]
    assert client.get("/gallery/", {"q": "\x00"}).status_code == 200


def test_bad_parameters_are_400(client, photos):
    assert client.get("/api/photos/", {"page": "0"}).status_code == 400
    assert client.get("/api/photos/", {"page": "x"}).status_code == 400
    assert client.get("/api/photos/", {"q": "x" * 201}).status_code == 400
    assert client.get("/api/photos/", {"page": "99"}).json()["results"] == []
    assert client.get("/api/photos/", {"page": str(2**63)}).status_code == 400
    assert client.get("/gallery/", {"page": str(2**63)}).status_code == 200


def test_upload_needs_a_signed_in_user_and_the_csrf_token(photos):
    from django.test import Client

    anonymous = Client()
    assert anonymous.post("/api/photos/", {"photos": SimpleUploadedFile("a.jpg", photo_bytes("rocket"))}).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.create_user("alice", password="x"))
    assert strict.post("/api/photos/", {"photos": SimpleUploadedFile("a.jpg", photo_bytes("rocket"))}).status_code == 403


def test_upload_reports_each_file(client, fake_queue, django_capture_on_commit_callbacks):
    client.force_login(get_user_model().objects.create_user("alice", password="x"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/photos/", {"photos": [SimpleUploadedFile("ok.jpg", photo_bytes("rocket")),
                                                            SimpleUploadedFile("bad.jpg", b"<html>")]})

    assert response.status_code == 201
    body = response.json()
    assert [a["filename"] for a in body["accepted"]] == ["ok.jpg"]
    assert "bad.jpg is not an image" in body["rejected"][0]["error"]
    assert ("photos.tasks.analyze_photo", (Photo.objects.get(original_filename="ok.jpg").id,)) in fake_queue.sent


def test_the_schema_is_served(client):
    served = client.get("/api/schema/").json()

    assert served == schema_document()
    assert served["openapi"].startswith("3.")


schema = schemathesis.openapi.from_dict(schema_document())
schema.app = application


@pytest.mark.django_db(transaction=True)
@schema.include(method="GET").parametrize()
@hypothesis_settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    Photo.objects.get_or_create(image="uploads/fuzz.jpg", defaults={"original_filename": "fuzz.jpg", "visibility": "public",
                                                                     "status": "labeled"})
    case.call_and_validate(app=application)
