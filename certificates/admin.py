from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from . import services
from .models import Certificate, CertificateEvent, SigningKey


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason", widget=forms.TextInput(attrs={"size": 40}))


class EventInline(admin.TabularInline):
    model = CertificateEvent
    extra = 0
    can_delete = False
    readonly_fields = ("action", "reason", "by_label", "at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ["public_id", "holder_name", "course", "issued_at", "status", "public"]
    list_filter = ["status", "course"]
    search_fields = ["public_id", "holder_name", "user__email"]
    readonly_fields = [f.name for f in Certificate._meta.fields]
    inlines = [EventInline]
    action_form = ReasonActionForm
    actions = ["revoke", "suspend", "reinstate"]

    def has_add_permission(self, request) -> bool:
        return False

    def _reason(self, request) -> str:
        return request.POST.get("reason", "").strip()

    def _change(self, request, queryset, service, verb: str) -> None:
        """Apply a status service to each selected certificate, with the form's reason."""
        reason = self._reason(request)
        if not reason:
            self.message_user(request, f"Give a reason to {verb}.", messages.ERROR)
            return
        for certificate in queryset:
            service(certificate=certificate, reason=reason, by=request.user)
        self.message_user(request, f"{verb.capitalize()}d {queryset.count()} certificate(s).")

    @admin.action(description="Revoke selected certificates (give a reason)")
    def revoke(self, request, queryset):
        self._change(request, queryset, services.certificate_revoke, "revoke")

    @admin.action(description="Suspend selected certificates (give a reason)")
    def suspend(self, request, queryset):
        self._change(request, queryset, services.certificate_suspend, "suspend")

    @admin.action(description="Reinstate selected suspended certificates")
    def reinstate(self, request, queryset):
        for certificate in queryset:
            services.certificate_reinstate(certificate=certificate, reason=self._reason(request), by=request.user)
        self.message_user(request, "Reinstated the suspended certificate(s) selected.")


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "public_key_multibase", "created_at"]
    readonly_fields = ["key_id", "public_key_multibase", "created_at"]
