from django import forms

from accounts.forms import display_name_field


class HolderNameForm(forms.Form):
    """The name to print on certificates, asked where a certificate waits for it."""

    display_name = display_name_field(required=True)
