"""Intermediate forms of the admin actions and views.
"""

from __future__ import annotations

from django import forms

from ..models import REMOVAL_REASONS, Flag


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
    # No default: one click must not clear a case; the moderator chooses.
    decision = forms.ChoiceField(choices=[("", "Choose…"), ("clear", "Clear"), ("remove", "Remove"),
                                          ("escalate", "Escalate")])
    # The state the moderator saw when the page was drawn: a decision made on a case that
    # changed since (another moderator decided it) is refused, not applied over it.
    seen_state = forms.CharField(widget=forms.HiddenInput, required=False)
    reason = forms.ChoiceField(required=False, label="Reason for a removal (the owner sees it)",
                               choices=[("", "---------"), *REMOVAL_REASONS.items()])
    note = forms.CharField(required=False, max_length=2000, label="Note (on a removal, the owner sees it too)",
                           widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if data.get("decision") == "remove" and not data.get("reason"):
            self.add_error("reason", "Choose the reason for the removal: the owner sees it.")
        return data
