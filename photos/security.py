"""The client's address, the Content-Security-Policy and the request size limit.

Login throttling is django-axes' (settings: AXES_*), abuse limits django-ratelimit's
(photos/views); both read the client's address from ``client_ip``, and a request over a
limit gets ``rate_limited``'s answer.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit.core import is_ratelimited

from photos.pipelines.storage import media_storage


def client_ip(request) -> str:
    """The client's address (django-axes and django-ratelimit both use it). Behind a
    proxy, set TRUSTED_PROXY_COUNT so it is read from X-Forwarded-For; otherwise the
    socket's address is the only trustworthy one."""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "0.0.0.0"


def rate_limited(request, exception=None):
    """django-ratelimit's answer (RATELIMIT_VIEW): 429, in the site's style or as JSON."""
    message = "Too many requests from you in a short time. Please wait a while and try again."
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"error": message}, status=429, headers={"Retry-After": "3600"})
    response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = "3600"
    return response


# Account forms served by Django's own views, and the setting holding each one's rate.
ADDRESS_RATES = {"/accounts/login/": "LOGIN_ADDRESS_RATE", "/admin/login/": "LOGIN_ADDRESS_RATE",
                 "/accounts/password_reset/": "PASSWORD_RESET_RATE"}


class LoginAddressRateMiddleware:
    """At most LOGIN_ADDRESS_RATE login attempts from one address across all usernames
    (django-axes locks a username from an address; this stops spraying one password over
    many usernames), and PASSWORD_RESET_RATE reset mails asked for from one address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        setting = ADDRESS_RATES.get(request.path) if request.method == "POST" else None
        if setting:
            if is_ratelimited(request, group=f"address:{setting}", key="ip", rate=getattr(settings, setting),
                              method="POST", increment=True):
                return rate_limited(request)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """A strict CSP on every response: scripts, styles and images from this site only
    (plus the storage's host, where presigned media URLs and direct uploads go, and any
    CSP_MEDIA_ORIGINS), no inline script, no framing."""

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def policy() -> str:
        # Looked up per response, so a settings change applies at once; built once per
        # set of origins.
        return _policy(tuple(dict.fromkeys([*media_storage().origins(), *getattr(settings, "CSP_MEDIA_ORIGINS", [])])))

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy())
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class RequestSizeLimitMiddleware:
    """Refuse (413) a request whose declared body is larger than any legitimate one: the
    most photos an upload form takes, each at the largest size allowed, or one video at
    its largest (the page sends one file per request), plus form overhead. Django streams
    file uploads to disk, so this is about disk and time, not memory."""

    OVERHEAD = 1024 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = max(settings.PHOTOS_MAX_UPLOAD_BYTES * settings.PHOTOS_MAX_FILES_PER_UPLOAD,
                    settings.PHOTOS_MAX_VIDEO_BYTES) + self.OVERHEAD
        if length > limit:
            return HttpResponse(f"Request too large: at most {limit} bytes.", status=413, content_type="text/plain")
        return self.get_response(request)


@functools.lru_cache(maxsize=8)
def _policy(origins: tuple[str, ...]) -> str:
    media = " ".join(origins)
    return (
        "default-src 'self'; "
        f"img-src 'self' data: {media}; "
        f"media-src 'self' {media}; "
        "script-src 'self'; "
        "style-src 'self' 'unsafe-inline'; "
        f"connect-src 'self' {media}; "
        f"object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self' {media}"
    ).replace("  ", " ").strip()
