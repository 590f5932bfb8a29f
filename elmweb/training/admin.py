"""Admin for trained models (stage 2) and inventors (stage 3): read only (they are made by training jobs)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from elmweb.training.models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "stage", "owner", "status", "init", "terrain_set", "dataset_programs", "path", "created_at")
    list_filter = ("stage", "status", "init", "terrain_set")
    search_fields = ("name", "path")
    readonly_fields = [f.name for f in TrainedModel._meta.get_fields() if f.concrete and not f.many_to_many] + ["runs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TrainedModel | None = None) -> bool:
        return False
