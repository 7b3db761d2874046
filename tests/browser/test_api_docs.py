"""/api/docs/ in Chromium: Swagger UI renders the API's schema from this site's own files,
under the site's Content-Security-Policy (issue 12, finding 5)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_shows_the_schema_with_no_csp_violation_and_no_other_host(live_server, page):
    problems, hosts = [], set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))

    page.goto(f"{live_server.url}/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("mediaapp photos API")
    expect(page.locator(".opblock-summary-path", has_text="/api/photos/{id}/")).to_be_visible()
    page.locator(".opblock-get .opblock-summary", has_text="/api/photos/{id}/").click()
    expect(page.locator(".opblock-body")).to_contain_text("No such photo (or not one the caller may see)")
    assert hosts == {live_server.url.split("/")[2]}
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
