from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .markdown import sanitize


def sanitize_html_fields(instance: models.Model, *names: str) -> None:
    """Runs the importer's sanitizer over HTML fields before every save, so HTML
    typed into the admin is held to the same allow-list as imported content (the
    pages render these fields with |safe). A list field is sanitised item by item."""
    for name in names:
        if name not in instance.__dict__:  # deferred: not loaded, so not written either
            continue
        value = getattr(instance, name)
        if isinstance(value, list):
            setattr(instance, name, [sanitize(item) if isinstance(item, str) else item for item in value])
        elif isinstance(value, str):
            setattr(instance, name, sanitize(value))


class CourseQuerySet(models.QuerySet["Course"]):
    def published(self) -> CourseQuerySet:
        return self.filter(published=True)

    def visible_to(self, user) -> CourseQuerySet:
        """Published courses, and the courses this user is staff of (preview);
        a superuser sees every course. Plain site staff (`is_staff`) get no more
        than a learner: that flag opens the admin only."""
        if not getattr(user, "is_authenticated", False):
            return self.published()
        if user.is_superuser:
            return self.all()
        return self.filter(Q(published=True) | Q(pk__in=CourseStaff.objects.filter(user=user).values("course")))


class Course(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField()
    description_html = models.TextField(blank=True)
    estimated_hours = models.FloatField()
    published = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)
    certificate_title = models.CharField(max_length=200, blank=True)
    # [{"lab": slug, "pass_mark": float | None}]: labs that must each pass.
    requirements = models.JSONField(default=list, blank=True)
    # Slugs of the courses a learner is expected to finish first (course.yaml's
    # `prerequisites`, checked at import: they exist and form no cycle).
    prerequisites = models.JSONField(default=list, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CourseQuerySet.as_manager()

    class Meta:
        ordering = ["order", "title"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        sanitize_html_fields(self, "description_html")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("courses:course-detail", args=[self.slug])

    def prerequisite_courses(self) -> list[Course]:
        """The prerequisite courses in the order course.yaml lists them."""
        if not self.prerequisites:
            return []
        by_slug = {course.slug: course for course in Course.objects.filter(slug__in=self.prerequisites)}
        return [by_slug[slug] for slug in self.prerequisites if slug in by_slug]


class ModuleQuerySet(models.QuerySet["Module"]):
    def published(self) -> ModuleQuerySet:
        return self.filter(published=True)


class Module(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="modules")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    estimated_hours = models.FloatField(default=0)
    quiz_pass_mark = models.FloatField(null=True, blank=True)
    published = models.BooleanField(default=True)
    content_hash = models.CharField(max_length=64, blank=True)

    objects = ModuleQuerySet.as_manager()

    class Meta:
        ordering = ["course", "order"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="module_unique_slug_per_course")]

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.slug}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("courses:module-detail", args=[self.course.slug, self.slug])

    @property
    def has_quiz(self) -> bool:
        return self.quiz_pass_mark is not None


class LessonQuerySet(models.QuerySet["Lesson"]):
    def published(self) -> LessonQuerySet:
        return self.filter(published=True)


class Lesson(models.Model):
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="lessons")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0)
    minutes = models.PositiveIntegerField(default=10)
    body_html = models.TextField()
    published = models.BooleanField(default=True)
    content_hash = models.CharField(max_length=64, blank=True)

    objects = LessonQuerySet.as_manager()

    class Meta:
        ordering = ["module", "order"]
        constraints = [models.UniqueConstraint(fields=["module", "slug"], name="lesson_unique_slug_per_module")]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        sanitize_html_fields(self, "body_html")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("courses:lesson-detail", args=[self.module.course.slug, self.module.slug, self.slug])


class Question(models.Model):
    """One multiple-choice question of a module's knowledge check."""

    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=80)
    order = models.PositiveIntegerField(default=0)
    prompt_html = models.TextField()
    choices_html = models.JSONField(default=list)
    answer = models.PositiveSmallIntegerField()
    explanation_html = models.TextField(blank=True)
    published = models.BooleanField(default=True)

    class Meta:
        ordering = ["module", "order"]
        constraints = [models.UniqueConstraint(fields=["module", "key"], name="question_unique_key_per_module")]

    def __str__(self) -> str:
        return f"{self.module}#{self.key}"

    def save(self, *args, **kwargs) -> None:
        sanitize_html_fields(self, "prompt_html", "choices_html", "explanation_html")
        super().save(*args, **kwargs)


class Enrollment(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    created_at = models.DateTimeField(auto_now_add=True)
    # "Continue where you left off": the last lesson, quiz or lab page visited.
    last_url = models.CharField(max_length=300, blank=True)
    last_title = models.CharField(max_length=200, blank=True)
    last_activity_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_activity_at"]
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="enrollment_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.course}"


class LessonProgress(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_progress")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="progress")
    completed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "lesson progress"
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="lesson_progress_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.lesson_id}"


class QuizAttemptQuerySet(models.QuerySet["QuizAttempt"]):
    def next_number(self, *, user, module: Module) -> int:
        """The number of the attempt `user` would make next at `module`'s knowledge check."""
        latest = self.filter(user=user, module=module).aggregate(latest=models.Max("number"))["latest"]
        return (latest or 0) + 1


class QuizAttempt(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts")
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="quiz_attempts")
    # {question key: the author's index of the chosen choice}
    answers = models.JSONField(default=dict)
    # Which of the learner's attempts at this module it is: it seeds the order its
    # choices were shown in (courses/quiz.py), so the result shows that order again.
    number = models.PositiveIntegerField(default=1)
    correct = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    passed = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = QuizAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(correct__lte=models.F("total")), name="quiz_correct_lte_total")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.module_id}: {self.correct}/{self.total}"

    @property
    def percent(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0


class CourseStaff(models.Model):
    """A user's role on one course's teaching team. What each role may do is the
    matrix in courses/access.py; a user without a row is a learner there."""

    class Role(models.TextChoices):
        INSTRUCTOR = "instructor", "Instructor"
        TA = "ta", "Teaching assistant"
        AUDITOR = "auditor", "Auditor (read-only)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_roles")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "course staff member"
        verbose_name_plural = "course staff"
        ordering = ["course", "role", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="course_staff_one_role_per_user"),
            models.CheckConstraint(
                condition=Q(role__in=["instructor", "ta", "auditor"]), name="course_staff_known_role"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) on {self.course}"
