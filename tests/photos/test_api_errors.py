"""The API answers in JSON whatever goes wrong, has an index, and browsable docs served
from the app (issue 12, finding 5)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def error_of(response) -> str:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert set(body) >= {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def test_the_index_lists_what_the_api_offers(client):
    body = client.get("/api/").json()

    assert body["name"] == "mediaapp photos API"
    assert body["links"] == {"photos": "http://testserver/api/photos/", "photo": "http://testserver/api/photos/{id}/",
                             "labels": "http://testserver/api/labels/?prefix={prefix}",
                             "schema": "http://testserver/api/schema/", "docs": "http://testserver/api/docs/"}


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_route_is_a_json_404_in_debug_mode_too(client, settings, debug):
    settings.DEBUG = debug

    response = client.get("/api/nothing-here/")

    assert response.status_code == 404 and error_of(response) == "Not found."


def test_a_method_not_allowed_is_a_json_405_that_says_which_are(client):
    response = client.delete("/api/photos/")

    assert response.status_code == 405 and response["Allow"] == "GET, POST"
    assert error_of(response) == "Method not allowed; use GET, POST."


def test_an_anonymous_upload_is_a_json_401_not_a_csrf_page():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/api/photos/", {})

    assert response.status_code == 401 and error_of(response) == "Log in to upload."


def test_a_signed_in_upload_without_the_csrf_token_is_a_json_403():
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("ada"))

    response = client.post("/api/photos/", {})

    assert response.status_code == 403 and "X-CSRFToken" in error_of(response)


def test_the_site_keeps_its_html_pages_for_the_same_errors():
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("ada"))

    refused = client.post("/photos/bulk/", {"action": "public"})
    missing = client.get("/no-such-page/")

    assert refused.status_code == 403 and refused["Content-Type"].startswith("text/html")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")


def test_the_docs_are_swagger_ui_from_this_site_on_the_apis_schema(client):
    page = client.get("/api/docs/").content.decode()

    assert 'data-schema-url="/api/schema/"' in page
    for asset in ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                  "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", "photos/api_docs.js"):
        assert f"/static/{asset}" in page and finders.find(asset), asset
    assert "http" not in page.split("<body>")[1].replace('href="/', "")  # nothing from another host


def test_the_favicon_exists_for_pages_that_do_not_name_one(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301 and response["Location"] == "/static/photos/favicon.svg"
    assert finders.find("photos/favicon.svg")
