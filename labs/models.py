from __future__ import annotations

from django.db import models
from django.db.models import Q

from courses.models import Course, CourseStaff, Module, sanitize_html_fields

from .lab_spec import LabSpec


class LabQuerySet(models.QuerySet["Lab"]):
    def published(self) -> LabQuerySet:
        return self.filter(published=True, course__published=True)

    def for_course(self, course: Course) -> LabQuerySet:
        return self.filter(course=course)

    def visible_to(self, user) -> LabQuerySet:
        """Published labs of published courses; a course's staff also see its
        unpublished labs (preview), a superuser every lab."""
        if not getattr(user, "is_authenticated", False):
            return self.published()
        if user.is_superuser:
            return self.all()
        # A subquery, not a join: a join on the staff table would repeat each lab once per staff member.
        staffed = CourseStaff.objects.filter(user=user).values("course")
        return self.filter(Q(published=True, course__published=True) | Q(course__in=staffed))


class _DeferArchives(models.Manager["Lab"]):
    def get_queryset(self) -> models.QuerySet[Lab]:
        # The archives are large and only the grader and the starter download need
        # them; every other read leaves them in the database.
        return super().get_queryset().defer("starter_zip", "hidden_archive")


class Lab(models.Model):
    class Kind(models.TextChoices):
        REPO = "repo", "Repository (archive or git)"
        NOTEBOOK = "notebook", "Notebook (.ipynb)"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="labs")
    module = models.ForeignKey(Module, on_delete=models.SET_NULL, null=True, blank=True, related_name="labs")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    summary = models.TextField(blank=True)
    estimated_hours = models.FloatField(default=1)
    order = models.PositiveIntegerField(default=0)
    instructions_html = models.TextField()
    pass_mark = models.FloatField()
    # The validated lab.yaml (labs.lab_spec.LabSpec as JSON).
    spec = models.JSONField()
    starter_zip = models.BinaryField()
    # Everything under hidden/ as a .tar.gz: grader scripts, hidden data, reference
    # solution and wrong variants. Never served to anyone.
    hidden_archive = models.BinaryField()
    # Hash of the spec, instructions, starter and hidden assets: results record it.
    content_hash = models.CharField(max_length=64)
    published = models.BooleanField(default=True)

    objects = _DeferArchives.from_queryset(LabQuerySet)()

    class Meta:
        ordering = ["course", "order"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="lab_unique_slug_per_course")]

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.slug}"

    def save(self, *args, **kwargs) -> None:
        sanitize_html_fields(self, "instructions_html")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("labs:lab-detail", args=[self.course.slug, self.slug])

    @property
    def full_slug(self) -> str:
        return f"{self.course.slug}/{self.slug}"

    @property
    def parsed_spec(self) -> LabSpec:
        return LabSpec.model_validate(self.spec)

    @property
    def gradeable(self) -> bool:
        return bool(self.spec.get("stages")) and bool(self.spec.get("checks"))

    @property
    def max_score(self) -> float:
        return float(sum(check.get("points", 0) for check in self.spec.get("checks", [])))
