"""Forms: validation only. Limits are read from settings at run time."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .models import Flag, Photo


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        if not files:
            raise forms.ValidationError("Choose at least one photo.", code="required")
        limit = settings.PHOTOS_MAX_FILES_PER_UPLOAD
        if len(files) > limit:
            raise forms.ValidationError(f"At most {limit} photos per upload; you chose {len(files)}.", code="too_many")
        return list(files)


class UploadForm(forms.Form):
    photos = MultipleFileField(
        label="Photos and videos", widget=MultipleFileInput(attrs={
            "accept": "image/jpeg,image/png,image/webp,image/avif,image/heic,image/heif,.heic,.heif,.avif,"
                      "video/mp4,video/quicktime,video/webm,.mp4,.mov,.webm"})
    )
    public = forms.BooleanField(required=False, label="Show in the public gallery once labelled")

    @property
    def visibility(self) -> str:
        return Photo.Visibility.PUBLIC if self.cleaned_data.get("public") else Photo.Visibility.PRIVATE


class SignUpForm(UserCreationForm):
    """Username, e-mail (so a forgotten password can be reset) and password."""

    email = forms.EmailField(max_length=254, help_text="For resetting your password; never shown to anyone.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self):
        email = get_user_model().objects.normalize_email(self.cleaned_data["email"]).strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account already uses this e-mail address; reset its password instead.")
        return email


class FlagForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "Choose a reason"), *Flag.Reason.choices])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Optional: what is wrong with this photo?")
