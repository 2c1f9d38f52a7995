from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("courses.urls")),
    path("labs/", include("labs.urls")),
    path("", include("grading.urls")),
    path("", include("certificates.urls")),
    path("lti/", include("lti.urls")),
    path("accounts/", include("allauth.urls")),
    path("profile/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("metrics", views.metrics, name="metrics"),
]
