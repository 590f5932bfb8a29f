"""HTTP views of the runs app: thin, they call selectors and render.

The pages are server-rendered shells; their modules (``frontend/pages/*.js``) read the JSON
API and the run's WebSocket. Like the API, everything but the dashboard's welcome needs a
login (pages redirect to the login page; the API answers 401).
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from elmweb.runs import selectors
from elmweb.runs.models import Genome, Run, Seed

log = logging.getLogger(__name__)
MAX_COMPARED = 4
ALL_ACTIONS = ("start", "pause", "resume", "stop")  # the control buttons, in this order


@require_http_methods(["GET", "HEAD"])
def index(request: HttpRequest) -> HttpResponse:
    """The dashboard: every run with live status and controls, and the new-run form."""
    if not request.user.is_authenticated:
        return render(request, "index.html", {"runs": None})
    runs = selectors.run_list(limit=100)
    user = request.user
    for run in runs:
        run["can_control"] = user.is_superuser or run["owner"] == user.get_username()
        run["actions"] = selectors.RUN_ACTIONS.get(run["status"], ()) if run["can_control"] else ()
    context = {"runs": runs, "choices": selectors.run_form_choices(), "all_actions": ALL_ACTIONS}
    return render(request, "index.html", context)


@require_http_methods(["GET", "HEAD"])
@login_required
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run, live: archive map, curves, feed of genomes, configuration and controls."""
    run = _run_or_404(run_id)
    data = selectors.run_dict(run, user=request.user)
    return render(
        request,
        "runs/run.html",
        {
            "run": data,
            "actions": selectors.RUN_ACTIONS.get(run.status, ()),
            "all_actions": ALL_ACTIONS,
            "mass_bins": selectors.run_mass_bins(run),
        },
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def genome_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One genome: its replay, program, diff from its parent, outcome, parent and children."""
    genome = _genome_or_404(pk)
    data = selectors.genome_dict(genome)
    parent_pk = genome.parent_id
    children = {row["gid"]: row["id"] for row in genome.children.values("gid", "id")[:200]}
    for child in data["children"]:
        child["id"] = children.get(child["gid"])
    return render(
        request,
        "runs/genome.html",
        {
            "genome": data,
            "run": genome.run,
            "pk": genome.pk,
            "parent_pk": parent_pk,
            "genome_meta": {
                "id": genome.pk,
                "run": genome.run_id,
                "gid": genome.gid,
                "has_trace": bool(data["evaluation"] and data["evaluation"]["has_trace"]),
            },
        },
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def run_genome_redirect(request: HttpRequest, run_id: int, gid: int) -> HttpResponse:
    """``/runs/<id>/genomes/<gid>/`` (engine ids, as events carry them) -> the genome's page."""
    try:
        genome = selectors.genome_get(run=_run_or_404(run_id), gid=gid)
    except Genome.DoesNotExist:
        raise Http404(f"run {run_id} has no genome {gid}") from None
    return redirect("genome", pk=genome.pk)


@require_http_methods(["GET", "HEAD"])
@login_required
def lineage_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A genome's line back to the seed (diffs, fitness chart) and its descendants tree."""
    genome = _genome_or_404(pk)
    steps = selectors.genome_lineage_steps(genome=genome)
    meta = {
        "id": genome.pk,
        "run": genome.run_id,
        "gid": genome.gid,
        "steps": [{k: step[k] for k in ("id", "gid", "fitness", "outcome", "operator")} for step in steps],
    }
    return render(
        request,
        "runs/lineage.html",
        {"genome": genome, "run": genome.run, "steps": steps, "lineage_meta": meta},
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def compare_page(request: HttpRequest) -> HttpResponse:
    """Runs side by side: ``?runs=1,2`` (up to four)."""
    text = request.GET.get("runs", "").strip()
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return _bad_request(request, f"runs={text!r} is not a list of run ids; write e.g. ?runs=1,2")
    if len(ids) > MAX_COMPARED:
        return _bad_request(request, f"compare at most {MAX_COMPARED} runs at once, not {len(ids)}")
    runs = [selectors.run_dict(_run_or_404(run_id), user=request.user) for run_id in dict.fromkeys(ids)]
    return render(
        request,
        "runs/compare.html",
        {"runs": runs, "ids": ",".join(str(r["id"]) for r in runs), "recent": selectors.run_list(limit=20)},
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def seeds_page(request: HttpRequest) -> HttpResponse:
    """Every seed with a replay of its walker; staff get links into the admin."""
    seeds = [selectors.seed_dict(seed, full=True) for seed in Seed.objects.order_by("name")]
    return render(request, "runs/seeds.html", {"seeds": seeds})


@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """Report versions and database health; HTTP 503 when the database fails."""
    report = selectors.health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def _run_or_404(run_id: int) -> Run:
    try:
        return selectors.run_get(run_id=run_id)
    except Run.DoesNotExist:
        raise Http404(f"there is no run {run_id}") from None


def _genome_or_404(pk: int) -> Genome:
    try:
        return selectors.genome_get_by_pk(pk=pk)
    except Genome.DoesNotExist:
        raise Http404(f"there is no genome {pk}") from None


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    log.info("bad page request %s: %s", request.get_full_path(), message)
    return render(request, "error.html", {"status": 400, "message": message}, status=400)
