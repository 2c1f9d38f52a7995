"""Every e-mail the site sends, in one voice: the site's name in the subject and the
body, and a plain-text body with an HTML alternative.

The site's own mails (staff alerts, certificates) call `mail_send` or
`mail_send_template`; allauth's (confirmation, password reset, ...) go through
`AccountAdapter`, which gives them the same name, footer and HTML layout. accounts is
the bottom layer, so every app may import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils.html import linebreaks, urlize
from django.utils.safestring import mark_safe


@dataclass(frozen=True)
class Site:
    """What e-mail templates know as `current_site` (allauth's name for it)."""

    name: str
    domain: str
    url: str


def site() -> Site:
    return Site(name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc, url=settings.SITE_URL)


def mail_subject(subject: str) -> str:
    """`subject` on one line, after the site's name: "[Shipwright] ..."."""
    return f"[{settings.SITE_NAME}] " + " ".join(subject.splitlines()).strip()


def mail_html_from_text(text: str) -> str:
    """An HTML alternative made from a plain-text body: its paragraphs, line breaks and
    links, escaped (nothing in `text` becomes markup), in the site's e-mail layout."""
    # urlize escapes everything but the links it makes; linebreaks then only adds <p> and <br>.
    text_html = mark_safe(linebreaks(urlize(text, autoescape=True), autoescape=False))  # noqa: S308
    return render_to_string("accounts/email/layout.html", {"text_html": text_html, "current_site": site()})


def mail_send(*, to: Sequence[str], subject: str, text: str, html: str | None = None) -> int:
    """Send one e-mail as the site: the subject after the site's name, `text` signed
    with the site's name and address, and an HTML alternative (`html`, a whole
    document, usually a template extending accounts/email/layout.html; by default one
    made from the text). Returns the number sent (1); raises what the backend raises."""
    signed = f"{text.strip()}\n\n-- \n{settings.SITE_NAME}\n{settings.SITE_URL}/\n"
    message = EmailMultiAlternatives(
        subject=mail_subject(subject), body=signed, from_email=settings.DEFAULT_FROM_EMAIL, to=list(to)
    )
    message.attach_alternative(html if html is not None else mail_html_from_text(signed), "text/html")
    return message.send()


def mail_send_template(*, to: Sequence[str], template_prefix: str, context: dict[str, Any]) -> int:
    """Send the e-mail of the templates `<template_prefix>_subject.txt`, `_message.txt`
    and, if it exists, `_message.html` (extending accounts/email/layout.html), rendered
    with `context` plus `current_site`, through `mail_send`."""
    context = {"current_site": site(), **context}
    subject = render_to_string(f"{template_prefix}_subject.txt", context)
    text = render_to_string(f"{template_prefix}_message.txt", context)
    try:
        html: str | None = render_to_string(f"{template_prefix}_message.html", context)
    except TemplateDoesNotExist:
        html = None
    return mail_send(to=to, subject=subject, text=text, html=html)


class AccountAdapter(DefaultAccountAdapter):
    """allauth's e-mails with the site's name (not the request's host) and an HTML
    alternative in the site's layout."""

    def format_email_subject(self, subject: str) -> str:
        return mail_subject(subject)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": site()})

    def render_mail(
        self,
        template_prefix: str,
        email: str | list[str],
        context: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        message = super().render_mail(template_prefix, email, context, headers=headers)
        if isinstance(message, EmailMultiAlternatives) and not message.alternatives:
            message.attach_alternative(mail_html_from_text(str(message.body)), "text/html")
        return message
