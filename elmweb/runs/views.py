"""HTTP views of the runs app: thin, they call selectors and render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from elmweb.runs.selectors import health_report


@require_http_methods(["GET", "HEAD"])
def index(request: HttpRequest) -> HttpResponse:
    """Render the landing page."""
    return render(request, "index.html")


@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """Report versions and database health; HTTP 503 when the database fails."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
