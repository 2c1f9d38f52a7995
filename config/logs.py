"""Django's error reports to ADMINS, sent like every other e-mail of the site."""

from __future__ import annotations

from typing import Any

from django.core import mail
from django.utils.log import AdminEmailHandler


class SiteAdminEmailHandler(AdminEmailHandler):
    """Django's report with the HTML alternative every mail of the site carries (made
    from the text report, escaped); the site's name in the subject comes from
    EMAIL_SUBJECT_PREFIX."""

    def send_mail(self, subject: str, message: str, *args: Any, **kwargs: Any) -> None:
        # Imported here: logging is configured before the apps are loaded.
        from accounts.mail import mail_html_from_text

        if not kwargs.get("html_message"):
            kwargs["html_message"] = mail_html_from_text(message)
        mail.mail_admins(subject, message, *args, connection=self.connection(), **kwargs)
