"""URL configuration for elmweb."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from elmweb.runs import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
