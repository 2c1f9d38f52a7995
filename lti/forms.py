from __future__ import annotations

from django import forms
from django.db import models

from .models import Platform


def _formfield(field: models.Field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


NO_DEPLOYMENT = "Give at least one deployment id."


class PlatformForm(forms.ModelForm):
    deployment_ids = forms.CharField(
        error_messages={"required": NO_DEPLOYMENT},
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One deployment id per line, as the LMS shows them.",
    )

    class Meta:
        model = Platform
        formfield_callback = _formfield
        fields = [
            "name",
            "issuer",
            "client_id",
            "deployment_ids",
            "auth_login_url",
            "auth_token_url",
            "key_set_url",
            "auth_audience",
            "active",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["deployment_ids"] = "\n".join(self.instance.deployment_ids)

    def clean_deployment_ids(self) -> list[str]:
        ids = [line.strip() for line in self.cleaned_data["deployment_ids"].splitlines() if line.strip()]
        if not ids:
            raise forms.ValidationError(NO_DEPLOYMENT)
        return list(dict.fromkeys(ids))
