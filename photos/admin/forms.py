"""Intermediate forms of the admin actions and views.
"""

from __future__ import annotations

from django import forms

from ..models import (
    Flag,
)


class AddLabelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Label to add (approved)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class StaffFlagForm(forms.Form):
    reason = forms.ChoiceField(choices=Flag.Reason.choices)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MergeForm(forms.Form):
    into = forms.CharField(max_length=100, label="Merge into (label name)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("clear", "Clear"), ("remove", "Remove"), ("escalate", "Escalate")])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
