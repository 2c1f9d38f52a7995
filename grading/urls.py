from django.urls import path

from . import api, views

app_name = "grading"
urlpatterns = [
    path(
        "api/v1/labs/<slug:course_slug>/<slug:lab_slug>/submissions",
        api.submission_create,
        name="api-submission-create",
    ),
    path("api/v1/submissions/<uuid:pk>", api.submission_detail, name="api-submission-detail"),
    path("labs/<slug:course_slug>/<slug:lab_slug>/submit/", views.submission_create, name="submission-create"),
    path("submissions/<uuid:pk>/", views.submission_detail, name="submission-detail"),
    path("submissions/<uuid:pk>/status/", views.submission_status, name="submission-status"),
    path(
        "submissions/<uuid:pk>/notebook.ipynb", views.submission_notebook_download, name="submission-notebook-download"
    ),
    path("submissions/<uuid:pk>/regrade/", views.submission_regrade, name="submission-regrade"),
    path(
        "instructor/labs/<slug:course_slug>/<slug:lab_slug>/submissions/", views.lab_submissions, name="lab-submissions"
    ),
    path("instructor/labs/<slug:course_slug>/<slug:lab_slug>/regrade/", views.lab_regrade_all, name="lab-regrade-all"),
    path("instructor/courses/<slug:course_slug>/grades.csv", views.course_grades_csv, name="course-grades-csv"),
]
