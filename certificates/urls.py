from django.urls import path

from . import views

app_name = "certificates"
urlpatterns = [
    path("verify/shipwright-verify.pyz", views.verifier_download, name="verifier-download"),
    path("verify/<str:public_id>/", views.verify, name="verify"),
    path("verify/<str:public_id>/credential.json", views.credential_json, name="credential-json"),
    path(".well-known/did.json", views.did_json, name="did-json"),
    path("status/<slug:slug>", views.status_list, name="status-list"),
    path("certificates/<str:public_id>/certificate.pdf", views.certificate_pdf, name="certificate-pdf"),
    path("certificates/<str:public_id>/settings/", views.certificate_settings, name="certificate-settings"),
    path("certificates/<str:public_id>/reissue/", views.certificate_reissue, name="certificate-reissue"),
    path("certificates/moment/<slug:course_slug>/", views.certificate_moment, name="moment"),
    path("certificates/name/", views.holder_name_set, name="holder-name-set"),
]
