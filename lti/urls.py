from django.urls import path

from . import views

app_name = "lti"

urlpatterns = [
    path("platforms/", views.platform_list, name="platform-list"),
    path("platforms/new/", views.platform_edit, name="platform-create"),
    path("platforms/<int:pk>/", views.platform_edit, name="platform-edit"),
    path("jwks.json", views.jwks, name="jwks"),
    path("login/", views.login_initiate, name="login"),
    path("launch/", views.launch, name="launch"),
    path("deep-link/", views.launch, name="deep-link"),
    path("deep-link/pick/", views.deep_link_pick, name="deep-link-pick"),
    path("link/", views.account_link, name="account-link"),
    path("courses/<slug:slug>/", views.course_lms, name="course-lms"),
    path("syncs/<int:pk>/resend/", views.grade_sync_resend, name="grade-sync-resend"),
    path("contexts/<int:pk>/roster/", views.roster_refresh, name="roster-refresh"),
]
