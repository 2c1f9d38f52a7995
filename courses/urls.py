from django.urls import path

from . import views

app_name = "courses"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("courses/<slug:slug>/", views.course_detail, name="course-detail"),
    path("courses/<slug:slug>/enroll/", views.course_enroll, name="course-enroll"),
    # Under instructor/ (beside grading's instructor pages): a module may be called "staff".
    path("instructor/courses/<slug:slug>/staff/", views.course_staff, name="course-staff"),
    path("courses/<slug:slug>/<slug:module_slug>/", views.module_detail, name="module-detail"),
    path("courses/<slug:slug>/<slug:module_slug>/quiz/", views.quiz, name="quiz"),
    path(
        "courses/<slug:slug>/<slug:module_slug>/quiz/attempts/<int:attempt_id>/",
        views.quiz_attempt,
        name="quiz-attempt",
    ),
    path(
        "courses/<slug:slug>/<slug:module_slug>/<slug:lesson_slug>/",
        views.lesson_detail,
        name="lesson-detail",
    ),
]
