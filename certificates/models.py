from __future__ import annotations

from django.conf import settings
from django.db import models


class SigningKey(models.Model):
    """A public key the issuer has signed with. Published in did.json forever, so
    credentials signed before a rotation stay verifiable; the private half lives
    only in a file or the environment, never in the database."""

    key_id = models.CharField(max_length=40, unique=True)  # fragment, e.g. "key-1"
    public_key_multibase = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "key_id"]

    def __str__(self) -> str:
        return self.key_id


class Certificate(models.Model):
    class Status(models.TextChoices):
        VALID = "valid", "Valid"
        REVOKED = "revoked", "Revoked"
        SUSPENDED = "suspended", "Suspended"

    # At least 128 random bits (secrets.token_urlsafe(24) is 192), not derived from anything.
    public_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="certificates"
    )
    course = models.ForeignKey("courses.Course", on_delete=models.PROTECT, related_name="certificates")
    title = models.CharField(max_length=200)
    holder_name = models.CharField(max_length=120)
    issued_at = models.DateTimeField()
    # The signed credential exactly as issued; served byte for byte.
    credential = models.TextField()
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="certificates")
    status_index = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Evidence shown on the public page when the holder allows it.
    evidence = models.JSONField(default=list, blank=True)
    public = models.BooleanField(default=True, help_text="Whether the verify page is reachable at all.")
    show_evidence = models.BooleanField(default=True, help_text="Whether the verify page lists scores.")
    # False once reissued (with a new holder name): the learner's certificate is the
    # one that replaced it, and this one is revoked as superseded.
    current = models.BooleanField(default=True)
    replaces = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by")
    # The prerequisite credentials this one builds on, as linked in its evidence:
    # [{"course": slug, "title": ..., "public_id": ..., "issued": "YYYY-MM-DD"}].
    prerequisites = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            # Exactly one current certificate per learner and course (a NULL user after
            # account deletion does not collide; superseded ones are not current).
            models.UniqueConstraint(
                fields=["user", "course"],
                condition=models.Q(current=True),
                name="certificate_once_per_learner_course",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} for {self.holder_name}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("certificates:verify", args=[self.public_id])


class CertificateEvent(models.Model):
    class Action(models.TextChoices):
        ISSUED = "issued", "Issued"
        REVOKED = "revoked", "Revoked"
        SUSPENDED = "suspended", "Suspended"
        REINSTATED = "reinstated", "Reinstated"

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    by_label = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.action} {self.certificate_id} at {self.at:%Y-%m-%d}"


class StatusList(models.Model):
    """A Bitstring Status List (slug = purpose: revocation or suspension), and its
    signed credential as served."""

    slug = models.SlugField(unique=True, default="revocation")
    bits = models.BinaryField()
    credential = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.slug


class PendingCertificate(models.Model):
    """A learner met every requirement but no signing key could sign then: the
    certificate is owed, and issued (then this row deleted) once a key exists, by
    the reaper or by `generate_signing_key`. Never a lost certificate."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_certificates")
    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="pending_certificates")
    since = models.DateTimeField(auto_now_add=True)
    # Why it could not be issued (for operators; never shown to the learner).
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["since"]
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="pending_certificate_once_per_learner_course")
        ]

    def __str__(self) -> str:
        return f"pending certificate {self.course_id} for user {self.user_id}"
