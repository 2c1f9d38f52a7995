from django.contrib import admin

from .models import Lab


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "module", "kind", "pass_mark", "published"]
    list_filter = ["course", "kind", "published"]
    search_fields = ["title", "slug"]
    exclude = ["starter_zip", "hidden_archive"]
    readonly_fields = ["content_hash", "spec"]
