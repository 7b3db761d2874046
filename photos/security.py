"""Login rate limiting and the Content-Security-Policy.

Failed logins are counted per client address and per username (the ``user_login_failed``
signal covers the site's and the admin's login alike); past LOGIN_MAX_FAILURES within
LOGIN_WINDOW_SECONDS, login POSTs get a 429 until the window passes. A successful login
clears the username's count.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpResponse

LOGIN_PATHS = ("/accounts/login/", "/admin/login/")


def _client(request) -> str:
    # Behind a proxy, set TRUSTED_PROXY_COUNT so the client address is read from
    # X-Forwarded-For; otherwise the socket's address is the only trustworthy one.
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _keys(request, username: str | None) -> list[str]:
    keys = [f"login-fail:ip:{_client(request)}"]
    if username:
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        keys.append(f"login-fail:user:{digest}")
    return keys


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    for key in _keys(request, credentials.get("username")):
        cache.add(key, 0, settings.LOGIN_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_WINDOW_SECONDS)


@receiver(user_logged_in)
def _clear_failures(sender, request, user, **kwargs):
    if request is not None:
        cache.delete_many(_keys(request, user.get_username())[1:])


class LoginRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path in LOGIN_PATHS:
            username = request.POST.get("username")
            if any((cache.get(key) or 0) >= settings.LOGIN_MAX_FAILURES for key in _keys(request, username)):
                minutes = max(1, settings.LOGIN_WINDOW_SECONDS // 60)
                return HttpResponse(
                    f"Too many failed logins. Try again in {minutes} minutes, or reset your password.",
                    status=429, content_type="text/plain", headers={"Retry-After": str(settings.LOGIN_WINDOW_SECONDS)},
                )
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """A strict CSP on every response: scripts, styles and images from this site only
    (plus presigned media URLs on the storage host), no inline script, no framing."""

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def policy() -> str:
        # Looked up per response, so a settings change applies at once; built once per
        # set of origins.
        return _policy(tuple(getattr(settings, "CSP_MEDIA_ORIGINS", [])))

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy())
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class RequestSizeLimitMiddleware:
    """Refuse (413) a request whose declared body is larger than any legitimate one: the
    most files an upload form takes, each at the largest size allowed, plus form overhead.
    Django streams file uploads to disk, so this is about disk and time, not memory."""

    OVERHEAD = 1024 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.PHOTOS_MAX_UPLOAD_BYTES * settings.PHOTOS_MAX_FILES_PER_UPLOAD + self.OVERHEAD
        if length > limit:
            return HttpResponse(f"Request too large: at most {limit} bytes.", status=413, content_type="text/plain")
        return self.get_response(request)


@functools.lru_cache(maxsize=8)
def _policy(origins: tuple[str, ...]) -> str:
    media = " ".join(origins)
    return (
        "default-src 'self'; "
        f"img-src 'self' data: {media}; "
        "script-src 'self'; "
        "style-src 'self' 'unsafe-inline'; "
        f"connect-src 'self' {media}; "
        f"object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self' {media}"
    ).replace("  ", " ").strip()
