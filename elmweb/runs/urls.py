"""URLs of the JSON API, mounted at /api/ (see ``elmweb.runs.api`` for the conventions)."""

from __future__ import annotations

from django.urls import path, re_path

from elmweb.runs import api

urlpatterns = [
    path("csrf", api.csrf, name="api-csrf"),
    path("login", api.login_view, name="api-login"),
    path("logout", api.logout_view, name="api-logout"),
    path("me", api.me, name="api-me"),
    path("seeds", api.seeds, name="api-seeds"),
    path("seeds/<slug:name>", api.seed_detail, name="api-seed"),
    path("seeds/<slug:name>/trace", api.seed_trace, name="api-seed-trace"),
    path("runs", api.runs, name="api-runs"),
    path("runs/<int:run_id>", api.run_detail, name="api-run"),
    path("runs/<int:run_id>/metrics", api.run_metrics, name="api-run-metrics"),
    path("runs/<int:run_id>/archive", api.run_archive, name="api-run-archive"),
    path("runs/<int:run_id>/events", api.run_events, name="api-run-events"),
    path("runs/<int:run_id>/genomes", api.genomes, name="api-genomes"),
    path("runs/<int:run_id>/genomes/<int:gid>", api.genome_detail, name="api-genome"),
    path("runs/<int:run_id>/genomes/<int:gid>/trace", api.genome_trace, name="api-genome-trace"),
    path("runs/<int:run_id>/genomes/<int:gid>/lineage", api.genome_lineage, name="api-genome-lineage"),
    path(
        "runs/<int:run_id>/genomes/<int:gid>/descendants",
        api.genome_descendants,
        name="api-genome-descendants",
    ),
    path("runs/<int:run_id>/<slug:action>", api.run_action, name="api-run-action"),
    re_path(r"^(?P<rest>.*)$", api.not_found),
]
