from django.urls import path

from . import views

app_name = "labs"
urlpatterns = [
    path("<slug:course_slug>/<slug:lab_slug>/", views.lab_detail, name="lab-detail"),
    path("<slug:course_slug>/<slug:lab_slug>/starter.zip", views.starter_download, name="starter-download"),
]
