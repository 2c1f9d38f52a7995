from django.contrib import admin

from .models import Context, GradeSync, Identity, Membership, Platform, ToolKey


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "active"]


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "created_at"]
    readonly_fields = ["key_id", "public_jwk", "created_at"]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["platform", "sub", "user", "created_at"]
    search_fields = ["sub", "user__email"]


@admin.register(Context)
class ContextAdmin(admin.ModelAdmin):
    list_display = ["platform", "context_id", "title"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["context", "sub", "name", "user", "in_roster"]


@admin.register(GradeSync)
class GradeSyncAdmin(admin.ModelAdmin):
    list_display = ["context", "user", "lab", "status", "score_given", "sent_at"]
    list_filter = ["status"]
