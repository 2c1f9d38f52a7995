from django.contrib import admin

from .models import Course, CourseStaff, Enrollment, Lesson, LessonProgress, Module, Question, QuizAttempt


class ModuleInline(admin.TabularInline):
    model = Module
    fields = ["order", "slug", "title", "published"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class CourseStaffInline(admin.TabularInline):
    model = CourseStaff
    fields = ["user", "role"]
    autocomplete_fields = ["user"]
    extra = 1


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "published", "estimated_hours", "updated_at"]
    list_filter = ["published"]
    search_fields = ["title", "slug"]
    inlines = [CourseStaffInline, ModuleInline]
    readonly_fields = ["content_hash", "updated_at"]


class LessonInline(admin.TabularInline):
    model = Lesson
    fields = ["order", "slug", "title", "minutes", "published"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "order", "published"]
    list_filter = ["course", "published"]
    inlines = [LessonInline]


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ["title", "module", "order", "minutes", "published"]
    list_filter = ["module__course", "published"]
    search_fields = ["title", "slug"]


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["key", "module", "order", "published"]
    list_filter = ["module__course"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "created_at", "last_activity_at"]
    list_filter = ["course"]
    search_fields = ["user__email"]


@admin.register(LessonProgress)
class LessonProgressAdmin(admin.ModelAdmin):
    list_display = ["user", "lesson", "completed_at"]
    list_filter = ["lesson__module__course"]
    search_fields = ["user__email"]


@admin.register(QuizAttempt)
class QuizAttemptAdmin(admin.ModelAdmin):
    list_display = ["user", "module", "correct", "total", "passed", "created_at"]
    list_filter = ["passed", "module__course"]
    search_fields = ["user__email"]


@admin.register(CourseStaff)
class CourseStaffAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "role", "created_at"]
    list_filter = ["role", "course"]
    search_fields = ["user__email", "course__slug"]
    autocomplete_fields = ["user"]
