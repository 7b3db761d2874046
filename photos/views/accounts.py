"""The front door and signing up."""

from __future__ import annotations

from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from ..forms import SignUpForm
from .common import rate


@require_GET
def home(request):
    """The front door: one's own photos when signed in, the public gallery otherwise."""
    return redirect("photos:mine" if request.user.is_authenticated else "gallery")


@ratelimit(key="ip", rate=rate("SIGNUP_RATE"), method="POST")
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("photos:mine")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("photos:mine")
    return render(request, "registration/signup.html", {"form": form})
