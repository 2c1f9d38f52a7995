"""LTI 1.3 Advantage: the platforms (LMSs) registered with the tool, who is who on
each, and what has been sent back to their gradebooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Platform(models.Model):
    """An LMS registration: the values its administrator gives us (issuer, client id,
    deployment ids, its endpoints). One issuer may register several client ids."""

    name = models.CharField(max_length=200)
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    deployment_ids = models.JSONField(default=list, help_text="Deployment ids, one per line")
    auth_login_url = models.URLField("OIDC authentication URL", max_length=500)
    auth_token_url = models.URLField("OAuth2 access token URL", max_length=500)
    key_set_url = models.URLField("platform JWKS URL", max_length=500)
    auth_audience = models.CharField(max_length=500, blank=True, help_text="only if the LMS asks for one")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_unique_client")]

    def __str__(self) -> str:
        return self.name


class ToolKey(models.Model):
    """The public half of every tool key ever used; all stay in the JWKS so an LMS
    that cached an older key keeps verifying during a rotation."""

    key_id = models.CharField(max_length=40, unique=True)
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.key_id


class Identity(models.Model):
    """A Shipwright account linked to a platform's user id (`sub`): once per
    platform user, and one platform user per account and platform."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="identities")
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "sub"], name="lti_identity_unique_sub"),
            models.UniqueConstraint(fields=["platform", "user"], name="lti_identity_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}: {self.sub}"


class Context(models.Model):
    """An LMS course (the launch's context claim) and the Shipwright courses it shows,
    with its service endpoints (AGS line items, NRPS memberships)."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    deployment_id = models.CharField(max_length=255, blank=True)
    # Every Shipwright course the LMS course links to (one LMS course may show labs of several).
    courses = models.ManyToManyField("courses.Course", blank=True, related_name="lti_contexts")
    lineitems_url = models.URLField(max_length=500, blank=True)
    ags_scopes = models.JSONField(default=list)
    memberships_url = models.URLField(max_length=500, blank=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "context_id"], name="lti_context_unique"),
        ]

    def __str__(self) -> str:
        return self.title or self.context_id


class Membership(models.Model):
    """Someone known in an LMS course: from a launch, or from the NRPS roster (then
    possibly not yet linked to an account)."""

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="members")
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="lti_memberships"
    )
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(blank=True)
    roles = models.JSONField(default=list)
    status = models.CharField(max_length=20, default="Active")
    in_roster = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "sub"]
        constraints = [models.UniqueConstraint(fields=["context", "sub"], name="lti_membership_unique")]

    def __str__(self) -> str:
        return f"{self.context}: {self.name or self.sub}"


class LineItem(models.Model):
    """The LMS gradebook column of one lab in one LMS course."""

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="line_items")
    lab = models.ForeignKey("labs.Lab", on_delete=models.CASCADE, related_name="lti_line_items")
    url = models.URLField(max_length=500)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "lab"], name="lti_lineitem_unique")]

    def __str__(self) -> str:
        return self.url


class GradeSync(models.Model):
    """Where a learner's best score for a lab stands in one LMS gradebook."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="grade_syncs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_grade_syncs")
    lab = models.ForeignKey("labs.Lab", on_delete=models.CASCADE, related_name="lti_grade_syncs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lab__order", "user__email"]
        constraints = [models.UniqueConstraint(fields=["context", "user", "lab"], name="lti_gradesync_unique")]

    def __str__(self) -> str:
        return f"{self.context}: {self.user_id} {self.lab_id} {self.status}"


class UsedNonce(models.Model):
    """Nonces of accepted launches: a replayed id_token finds its nonce here."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "nonce"], name="lti_nonce_unique")]

    def __str__(self) -> str:
        return self.nonce
