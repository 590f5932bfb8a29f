"""Admin: curate seeds (checked in the sandbox on save); browse runs and genomes read-only.

Run actions (start, pause, resume, stop, clone) call the same services as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from elmweb.runs import services
from elmweb.runs.models import Genome, Run, Seed


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system: viewable and searchable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Seed)
class SeedAdmin(admin.ModelAdmin):
    """Seeds: a broken program is refused with its line and reason, and nothing is saved."""

    list_display = ("name", "title", "enabled", "builtin", "fitness", "updated_at")
    list_filter = ("enabled", "builtin")
    search_fields = ("name", "title", "description")
    readonly_fields = ("fitness", "builtin", "created_by", "created_at", "updated_at")
    fields = (
        "name", "title", "description", "enabled", "text", "preamble",
        "fitness", "builtin", "created_by", "created_at", "updated_at",
    )  # fmt: skip
    actions = ("enable", "disable", "check_and_preview")

    def save_model(self, request: HttpRequest, obj: Seed, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Enable selected seeds")
    def enable(self, request: HttpRequest, queryset: QuerySet[Seed]) -> None:
        self.message_user(request, f"{queryset.update(enabled=True)} seed(s) enabled")

    @admin.action(description="Disable selected seeds")
    def disable(self, request: HttpRequest, queryset: QuerySet[Seed]) -> None:
        self.message_user(request, f"{queryset.update(enabled=False)} seed(s) disabled")

    @admin.action(description="Check in the sandbox and preview fitness")
    def check_and_preview(self, request: HttpRequest, queryset: QuerySet[Seed]) -> None:
        for seed in queryset:
            try:
                seed.clean()
            except ValidationError as exc:
                self.message_user(request, f"{seed.name}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            Seed.objects.filter(pk=seed.pk).update(fitness=seed.fitness)
            self.message_user(request, f"{seed.name}: fitness {seed.fitness:.2f} on flat ground")


def _run_action(
    service: Callable[..., Run], verb: str
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Run]], None]:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        for run in queryset:
            try:
                service(run=run, user=request.user)
            except (services.Conflict, PermissionDenied) as exc:
                modeladmin.message_user(request, str(exc), messages.WARNING)
            else:
                modeladmin.message_user(request, f"run {run.pk} {verb}")

    action.__name__ = f"run_{verb}"
    return admin.action(description=f"{verb.capitalize()} selected runs")(action)


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    """Runs, read-only; control them with the actions."""

    list_display = ("id", "name", "owner", "seed_name", "mutation", "status", "evaluations", "evals",
                    "niches_filled", "max_fitness", "created_at")  # fmt: skip
    list_filter = ("status", "mutation", "terrain")
    search_fields = ("name", "seed_name", "owner__username", "error")
    list_select_related = ("owner",)
    exclude = ("state",)
    actions = (
        _run_action(services.run_start, "started"),
        _run_action(services.run_pause, "paused"),
        _run_action(services.run_resume, "resumed"),
        _run_action(services.run_stop, "stopped"),
        "clone",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        return super().get_queryset(request).defer("state")

    @admin.action(description="Clone selected runs (as new runs of yours)")
    def clone(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        for run in queryset:
            clone = services.run_clone(run=run, owner=request.user)
            self.message_user(request, f"run {run.pk} cloned as run {clone.pk}")


@admin.register(Genome)
class GenomeAdmin(ReadOnlyAdmin):
    """Every genome, read-only; search by run id, genome id, operator, message or failure."""

    list_display = ("id", "run", "gid", "batch", "operator", "outcome", "fitness", "cell", "failure")
    list_filter = ("outcome", "operator")
    search_fields = ("=run__id", "=gid", "operator", "message", "failure", "failure_message")
    list_select_related = ("run",)
    raw_id_fields = ("run", "parent")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
