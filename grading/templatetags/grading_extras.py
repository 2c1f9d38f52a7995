"""The lab page's submit form and attempt history, shown by labs' template through
`{% load grading_extras %}`: labs sits below grading and never imports it."""

from django import template

from ..views import lab_submission_context

register = template.Library()


@register.simple_tag(takes_context=True)
def lab_submission_panels(context, lab) -> dict:
    """{"submit_form_html": ..., "attempts_html": ...} for the requesting user."""
    return lab_submission_context(context["request"], lab)
