"""Pages of the training app: the Models list with its "Train a model" form, and one model.

A stage-2 model's page offers, once it is done, the form that starts stage 3 from it; a
stage-3 inventor's page shows its reward per terrain, then its evaluation and replays.

Server-rendered shells like the run pages (``elmweb.runs.views``): their modules
(``frontend/pages/models.js`` and ``model.js``) read the JSON API under ``/api/models`` and
the job's WebSocket ``/ws/models/<id>/``. Logged-in users only (pages redirect to the login).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from elmweb.runs import selectors
from elmweb.training.api import summary
from elmweb.training.models import TrainedModel
from elmweb.training.services import INVENTOR_DEFAULTS
from evolution.lm.terrain_sets import TERRAIN_SETS

FORM_DEFAULTS = {"threshold": 0.5, "heldout": 0.1, "init": "pretrained", "minutes": 10, "samples": 256}


@require_http_methods(["GET", "HEAD"])
@login_required
def models_page(request: HttpRequest) -> HttpResponse:
    """Every trained model with its live status, and the form that trains a new one."""
    jobs = [summary(job) for job in TrainedModel.objects.select_related("owner").prefetch_related("runs")[:200]]
    return render(
        request,
        "training/models.html",
        {
            "jobs": jobs,
            "runs": selectors.run_list(limit=100),
            "defaults": FORM_DEFAULTS,
            "inits": TrainedModel.Init.choices,
            "terminal": list(TrainedModel.TERMINAL),
        },
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def model_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One training job, live: status, progress, loss (stage 2) or reward (stage 3) curve, cancel,
    then its evaluation."""
    try:
        job = TrainedModel.objects.select_related("owner", "parent").get(pk=pk)
    except TrainedModel.DoesNotExist:
        raise Http404(f"there is no trained model {pk}") from None
    context = {"job": summary(job), "terminal": job.status in TrainedModel.TERMINAL, "runs": job.runs.order_by("pk")}
    if job.stage == TrainedModel.Stage.INVENTOR:
        return render(request, "training/inventor.html", {**context, "parent": job.parent})
    context |= {
        "inventors": job.inventors.order_by("-pk"),
        "inventor_defaults": INVENTOR_DEFAULTS,
        "terrain_sets": [{"name": name, "terrains": ", ".join(terrains)} for name, terrains in TERRAIN_SETS.items()],
    }
    return render(request, "training/model.html", context)
