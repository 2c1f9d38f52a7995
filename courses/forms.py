from __future__ import annotations

from django import forms

from .models import CourseStaff


class CourseStaffForm(forms.Form):
    email = forms.EmailField(label="E-mail address of their account")
    role = forms.ChoiceField(choices=CourseStaff.Role.choices)
