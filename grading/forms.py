from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from labs.models import Lab

CHOOSE_ONE = "Upload a file or give a git URL, not both."
NOTHING_GIVEN = "Choose a file to upload or give a git URL."
NOTEBOOK_ONLY = "This is a notebook lab: upload one .ipynb file."
# Upload help per lab kind: each names only what that kind of lab accepts.
REPO_UPLOAD_HELP = "A .zip or .tar.gz archive of your repository, at most {mb} MB."
NOTEBOOK_UPLOAD_HELP = "One Jupyter notebook (.ipynb) that runs top to bottom, at most {mb} MB."


class SubmissionForm(forms.Form):
    archive = forms.FileField(
        required=False,
        label="Upload",
    )
    git_url = forms.CharField(
        required=False,
        label="…or a public git repository",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://github.com/you/your-repo.git"}),
    )
    git_ref = forms.CharField(
        required=False,
        label="Branch, tag or commit (optional)",
        max_length=200,
    )

    def __init__(self, *args, lab: Lab, **kwargs):
        super().__init__(*args, **kwargs)
        self.lab = lab
        mb = f"{settings.SHIPWRIGHT_UPLOAD_MAX_BYTES / 1024 / 1024:g}"
        if lab.kind == Lab.Kind.NOTEBOOK:
            self.fields["archive"].label = "Your notebook (.ipynb)"
            self.fields["archive"].help_text = NOTEBOOK_UPLOAD_HELP.format(mb=mb)
            self.fields["archive"].widget.attrs["accept"] = ".ipynb"
            del self.fields["git_url"]
            del self.fields["git_ref"]
        else:
            self.fields["archive"].help_text = REPO_UPLOAD_HELP.format(mb=mb)
            self.fields["archive"].widget.attrs["accept"] = ".zip,.tar.gz,.tgz"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("archive")
        url = (data.get("git_url") or "").strip()
        if self.lab.kind == Lab.Kind.NOTEBOOK:
            if upload is None:
                raise forms.ValidationError(NOTEBOOK_ONLY)
            return data
        if upload is not None and url:
            raise forms.ValidationError(CHOOSE_ONE)
        if upload is None and not url:
            raise forms.ValidationError(NOTHING_GIVEN)
        data["git_url"] = url
        data["git_ref"] = (data.get("git_ref") or "").strip()
        return data
