"""URL configuration for elmweb."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from elmweb.runs import views
from elmweb.training import views as training_views

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:run_id>/", views.run_page, name="run"),
    path(
        "runs/<int:run_id>/genomes/<int:gid>/", views.run_genome_redirect, name="run-genome"
    ),
    path("genomes/<int:pk>/", views.genome_page, name="genome"),
    path("genomes/<int:pk>/lineage/", views.lineage_page, name="lineage"),
    path("compare/", views.compare_page, name="compare"),
    path("seeds/", views.seeds_page, name="seeds"),
    path("models/", training_views.models_page, name="models"),
    path("models/<int:pk>/", training_views.model_page, name="model"),
    path("healthz", views.healthz, name="healthz"),
    # browsers ask for /favicon.ico on every page, the admin's included
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("api/", include("elmweb.training.urls")),  # /api/models...: before the runs API and its catch-all 404
    path("api/", include("elmweb.runs.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
