from django import forms

from .models import User

DISPLAY_NAME_LABEL = "Your name as it should appear on certificates"
DISPLAY_NAME_HELP = "Printed exactly as you type it. Your e-mail address never appears on a certificate."
DISPLAY_NAME_FUTURE_NOTE = (
    "A change applies to certificates issued from now on. Certificates you already hold keep the name "
    "they were issued with; you can ask for each to be reissued with the new name."
)


class NamePreviewInput(forms.TextInput):
    """A text input followed by the name as certificates will print it, updated as
    the learner types (accounts/static/accounts/name-preview.js)."""

    template_name = "accounts/widgets/name_preview.html"


def display_name_field(*, required: bool) -> forms.CharField:
    return forms.CharField(
        max_length=120,
        required=required,
        label=DISPLAY_NAME_LABEL,
        help_text=DISPLAY_NAME_HELP,
        widget=NamePreviewInput(attrs={"autocomplete": "name"}),
    )


class ProfileForm(forms.ModelForm):
    display_name = display_name_field(required=True)

    class Meta:
        model = User
        fields = ["display_name"]


class SignupForm(forms.Form):
    """What allauth's sign-up form adds (ACCOUNT_SIGNUP_FORM_CLASS): the name to print
    on certificates, asked up front so a certificate never waits for it or falls back
    to the e-mail address."""

    display_name = display_name_field(required=True)
    field_order = ["email", "display_name", "password1", "password2"]

    def signup(self, request, user: User) -> None:
        user.display_name = self.cleaned_data["display_name"]
        user.save(update_fields=["display_name"])


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="For example: GitHub Actions")
