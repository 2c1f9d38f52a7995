from django import forms

from .models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name"]
        labels = {"display_name": "Display name on certificates"}


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="For example: GitHub Actions")
