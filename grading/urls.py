from django.urls import path

from . import analytics_views, api, gradebook_views, regrade_views, views

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
    path(
        "instructor/labs/<slug:course_slug>/<slug:lab_slug>/regrades/",
        regrade_views.regrade_previews,
        name="regrade-previews",
    ),
    path("instructor/regrades/<int:pk>/", regrade_views.regrade_batch, name="regrade-batch"),
    path("instructor/regrades/<int:pk>/progress/", regrade_views.regrade_batch_progress, name="regrade-batch-progress"),
    path("instructor/regrades/<int:pk>/apply/", regrade_views.regrade_batch_apply, name="regrade-batch-apply"),
    path("instructor/courses/<slug:course_slug>/grades.csv", views.course_grades_csv, name="course-grades-csv"),
    path(
        "instructor/courses/<slug:course_slug>/gradebook/",
        gradebook_views.course_gradebook_page,
        name="course-gradebook",
    ),
    path(
        "instructor/courses/<slug:course_slug>/gradebook.json",
        gradebook_views.course_gradebook_json,
        name="course-gradebook-json",
    ),
    path("instructor/courses/<slug:course_slug>/at-risk/", gradebook_views.course_at_risk_page, name="course-at-risk"),
    path(
        "instructor/labs/<slug:course_slug>/<slug:lab_slug>/analytics/",
        analytics_views.lab_analytics,
        name="lab-analytics",
    ),
    path(
        "instructor/labs/<slug:course_slug>/<slug:lab_slug>/similar/",
        analytics_views.lab_similarity,
        name="lab-similarity",
    ),
    path(
        "instructor/labs/<slug:course_slug>/<slug:lab_slug>/similar/compare/",
        analytics_views.similarity_compare,
        name="lab-similarity-compare",
    ),
    path("instructor/courses/<slug:course_slug>/analytics/", analytics_views.course_analytics, name="course-analytics"),
]
