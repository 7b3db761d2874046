"""Accounts: password reset by mail, login rate limiting on both login pages, and the
security headers every page carries."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", email="alice@example.com", password="old-pass-phrase-1")


def test_password_reset_by_mail(client, alice):
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"}, follow=True)
    assert response.status_code == 200
    (message,) = mail.outbox
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)

    form = client.get(link, follow=True)
    set_url = form.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "new-pass-phrase-2", "new_password2": "new-pass-phrase-2"}, follow=True)

    assert done.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password("new-pass-phrase-2")


def test_unknown_address_gets_the_same_answer_and_no_mail(client, alice):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302 and response["Location"].endswith("/password_reset/done/")
    assert mail.outbox == []


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_repeated_failures_are_rate_limited(client, alice, settings, login_url):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert client.post(login_url, {"username": "alice", "password": "wrong"}).status_code == 200

    blocked = client.post(login_url, {"username": "alice", "password": "old-pass-phrase-1"})

    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.content.decode()
    assert int(blocked["Retry-After"]) == settings.LOGIN_WINDOW_SECONDS
    # Another address trying the same account is limited too (per username)...
    assert client.post(login_url, {"username": "alice", "password": "x"}, REMOTE_ADDR="10.0.0.9").status_code == 429
    # ...while other accounts from elsewhere are not.
    assert client.post(login_url, {"username": "bob", "password": "x"}, REMOTE_ADDR="10.0.0.9").status_code == 200


def test_a_successful_login_clears_the_username_count(client, alice, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    assert client.post("/accounts/login/", {"username": "alice", "password": "old-pass-phrase-1"}, REMOTE_ADDR="10.0.0.2").status_code == 302
    client.logout()

    for _ in range(2):
        assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.3").status_code == 200


def test_every_page_carries_a_strict_csp(client):
    response = client.get("/accounts/login/")

    policy = response["Content-Security-Policy"]
    script = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert script.strip() == "script-src 'self'"
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_forms_need_their_csrf_token(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)

    assert strict.post("/accounts/login/", {"username": "alice", "password": "old-pass-phrase-1"}).status_code == 403
    strict.force_login(alice)
    assert strict.post("/photos/", {}).status_code == 403


def test_oversized_requests_are_refused_before_reading_them(client, settings):
    settings.PHOTOS_MAX_UPLOAD_BYTES = 1000
    settings.PHOTOS_MAX_FILES_PER_UPLOAD = 2

    response = client.post("/photos/", data=b"x", content_type="application/octet-stream",
                           CONTENT_LENGTH=str(2000 + 1024 * 1024 + 1))

    assert response.status_code == 413
