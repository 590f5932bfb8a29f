"""The training JSON API under /api/models (conventions: ``elmweb.runs.api``).

    GET  /api/models                    trained models, newest first
    POST /api/models                    start one: {runs: [ids], threshold, heldout, init, minutes, max_steps, samples, name, base}
    GET  /api/models/<id>               one job: status, progress, loss, dataset, evaluation summary
    GET  /api/models/<id>/evaluation    its evaluation: the archive of sampled programs (stage 2), or per
                                        terrain the inventor against best-of-N with its distances (stage 3)
    POST /api/models/<id>/cancel        stop it
    POST /api/models/<id>/stage3        from a finished stage-2 model, train a terrain-conditioned inventor:
                                        {terrain_set, iterations, minutes, batch_size, samples, conditional,
                                         max_new_tokens, sim_seconds, name}
    GET  /api/models/<id>/replay?terrain=tunnel&source=conditional&rank=0
                                        a stage-3 evaluation's walker replayed (source: conditional, stage2, dataset)
    GET  /api/models/dataset?runs=1,2&threshold=0.5&heldout=0.1   the dataset as a JSON-lines download
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse

from elmweb.runs.api import api_view, body, valid
from elmweb.training import selectors, services
from elmweb.training.models import TrainedModel
from evolution.lm.terrain_sets import TERRAIN_SETS

SUMMARY = ("id", "name", "stage", "status", "error", "init", "base", "threshold", "heldout", "minutes", "max_steps",
           "samples", "dataset_programs", "dataset_heldout", "dataset_niches", "progress", "path", "cancel_requested",
           "terrain_set", "iterations", "batch_size", "conditional", "max_new_tokens", "sim_seconds")


class ModelCreateForm(forms.Form):
    """Types and bounds of a new training job."""

    runs = forms.JSONField()
    name = forms.CharField(max_length=200, required=False)
    threshold = forms.FloatField(min_value=0.0, max_value=1.0, required=False)
    heldout = forms.FloatField(min_value=0.0, max_value=0.9, required=False)
    init = forms.ChoiceField(choices=TrainedModel.Init.choices, required=False)
    minutes = forms.FloatField(min_value=0.05, max_value=24 * 60, required=False)
    max_steps = forms.IntegerField(min_value=1, max_value=10_000_000, required=False)
    samples = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    base = forms.CharField(max_length=500, required=False)

    def clean_runs(self) -> list[int]:
        runs = self.cleaned_data["runs"]
        if isinstance(runs, str):  # a form post: "1,2"
            runs = [r for r in runs.replace(" ", "").split(",") if r]
        if not isinstance(runs, list) or not runs or not all(str(r).isdigit() for r in runs):
            raise ValidationError("give a list of run ids, e.g. [3, 4]")
        return [int(r) for r in runs]


class InventorCreateForm(forms.Form):
    """Types and bounds of a new stage-3 job (what is left out takes ``services.INVENTOR_DEFAULTS``)."""

    name = forms.CharField(max_length=200, required=False)
    terrain_set = forms.ChoiceField(choices=[(name, name) for name in TERRAIN_SETS], required=False)
    iterations = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    minutes = forms.FloatField(min_value=0.05, max_value=24 * 60, required=False)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, required=False)
    samples = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    conditional = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    max_new_tokens = forms.IntegerField(min_value=1, max_value=4096, required=False)
    sim_seconds = forms.FloatField(min_value=0.5, max_value=120, required=False)


def summary(job: TrainedModel) -> dict[str, Any]:
    data = {name: getattr(job, name) for name in SUMMARY}
    data |= {
        "owner": job.owner.get_username(),
        "runs": sorted(job.runs.values_list("pk", flat=True)),
        "parent": job.parent_id,
        "terrains": list(job.terrains),
        "loss": job.loss,
        "rewards": job.rewards,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "evaluation": TrainedModel.evaluation_summary(job.evaluation),
    }
    return data


@api_view("GET", "POST")
def models(request: HttpRequest) -> JsonResponse:
    """List trained models, or start training one."""
    if request.method == "GET":
        jobs = TrainedModel.objects.select_related("owner").prefetch_related("runs")[:200]
        return JsonResponse({"models": [summary(j) for j in jobs]})
    job = services.model_create(owner=request.user, **valid(ModelCreateForm(body(request))))
    return JsonResponse(summary(job), status=201)


@api_view("GET")
def model_detail(request: HttpRequest, model_id: int) -> JsonResponse:
    """One training job."""
    return JsonResponse(summary(TrainedModel.objects.select_related("owner").get(pk=model_id)))


@api_view("GET")
def model_evaluation(request: HttpRequest, model_id: int) -> JsonResponse:
    """A finished job's evaluation, with the archive of its sampled programs."""
    job = TrainedModel.objects.get(pk=model_id)
    if job.evaluation is None:
        raise TrainedModel.DoesNotExist(f"model {model_id} has no evaluation yet (it is {job.status})")
    return JsonResponse(job.evaluation)


@api_view("POST")
def model_cancel(request: HttpRequest, model_id: int) -> JsonResponse:
    """Stop a training job."""
    return JsonResponse(summary(services.model_cancel(model_id=model_id, user=request.user)))


@api_view("POST")
def inventor_create(request: HttpRequest, model_id: int) -> JsonResponse:
    """Start stage 3 from a finished stage-2 model."""
    job = services.inventor_create(owner=request.user, parent_id=model_id, **valid(InventorCreateForm(body(request))))
    return JsonResponse(summary(job), status=201)


@api_view("GET")
def inventor_replay(request: HttpRequest, model_id: int) -> JsonResponse:
    """One walker of a stage-3 evaluation, replayed on its terrain."""
    rank = request.GET.get("rank", "0")
    if not rank.isdigit():
        raise BadRequest(f"rank must be a whole number from 0 (the farthest walker), got {rank!r}")
    return JsonResponse(selectors.inventor_replay(model_id=model_id, terrain=request.GET.get("terrain", ""),
                                                 source=request.GET.get("source", "conditional"), rank=int(rank)))


@api_view("GET")
def dataset_download(request: HttpRequest) -> HttpResponse:
    """The stage-2 dataset of runs as a JSON-lines file."""
    try:
        runs = [int(r) for r in request.GET.get("runs", "").split(",") if r.strip()]
        threshold = float(request.GET.get("threshold", "0.5"))
        heldout = float(request.GET.get("heldout", "0.1"))
    except ValueError:
        raise BadRequest("runs must be ids separated by commas, threshold and heldout numbers: "
                         "?runs=1,2&threshold=0.5&heldout=0.1") from None
    records = services.dataset(runs, threshold=threshold, heldout=heldout)
    answer = HttpResponse("".join(json.dumps(r.to_dict()) + "\n" for r in records), content_type="application/x-ndjson")
    name = f"dataset-runs-{'-'.join(map(str, sorted(set(runs))))}-t{threshold:g}.jsonl"
    answer["Content-Disposition"] = f'attachment; filename="{name}"'
    return answer
