"""The JSON API under /api/: thin function views over services and selectors.

Every answer is JSON. Errors are ``{"error": "<what to do>"}`` (plus ``"fields"`` for
invalid input) with a 4xx status: 400 bad input, 401 not logged in, 403 not allowed (not
the run's owner, not staff, CSRF), 404 unknown, 405 wrong method, 409 wrong run status.
Session authentication: log in with ``POST /api/login`` (or the login page); unsafe
methods need the CSRF token (``GET /api/csrf``) in an ``X-CSRFToken`` header.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth import authenticate, login, logout
from django.core.exceptions import BadRequest, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.csrf import csrf_failure as django_csrf_failure

from elmweb.runs import selectors, services
from elmweb.runs.models import Genome, Run

View = Callable[..., HttpResponse]
MAX_PAGE = 500
MAX_BINS = 1000  # per descriptor dimension


def error(status: int, message: str, **extra: Any) -> JsonResponse:
    """An error answer: ``{"error": message, **extra}``."""
    return JsonResponse({"error": message, **extra}, status=status)


def api_view(*methods: str, login_required: bool = True) -> Callable[[View], View]:
    """Wrap a view: allowed methods, login, and exceptions turned into 4xx JSON answers."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                answer = error(405, f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}")
                answer["Allow"] = ", ".join(sorted(allowed))
                return answer
            if login_required and not request.user.is_authenticated:
                return error(401, "log in first: POST /api/login with username and password")
            try:
                return view(request, *args, **kwargs)
            except BadRequest as exc:
                return error(400, str(exc))
            except ValidationError as exc:
                fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
                summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
                return error(400, f"invalid input: {summary}", fields=fields)
            except PermissionDenied as exc:
                return error(403, str(exc) or "you may not do this")
            except ObjectDoesNotExist as exc:
                return error(404, str(exc))
            except services.Conflict as exc:
                return error(409, str(exc))

        return wrapper

    return decorate


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Answer a failed CSRF check: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(
            403, f"CSRF check failed ({reason}): GET /api/csrf and send the token in an X-CSRFToken header"
        )
    return django_csrf_failure(request, reason=reason)


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other /api/ path."""
    return error(404, f"no API endpoint at {request.path}; see elmweb/runs/urls.py for the list")


# -- input -------------------------------------------------------------------------------------
def valid(form: forms.Form) -> dict[str, Any]:
    """A bound form's cleaned data.

    Raises:
        ValidationError: Its errors, by field (answered as a 400).
    """
    if not form.is_valid():
        raise ValidationError({name: list(errs) for name, errs in form.errors.items()})
    return form.cleaned_data


def body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (or form fields).

    Raises:
        BadRequest: If the body is not a JSON object.
    """
    if request.content_type != "application/json":
        return request.POST.dict()
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    except RecursionError:  # the decoder recurses once per nested array or object
        raise BadRequest(
            "the body's JSON is nested too deeply; send a flat JSON object, e.g. {\"seed\": \"square\"}"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object, e.g. {\"seed\": \"square\"}")
    return data


def query_int(
    request: HttpRequest, name: str, *, default: int | None, low: int = 0, high: int | None = None
) -> int | None:
    """An integer query parameter within ``[low, high]``.

    Raises:
        BadRequest: If it is not an integer or is out of range.
    """
    value = request.GET.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name}={value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        raise BadRequest(f"{name}={number} is out of range: use {low}..{high if high is not None else ''}")
    return number


class LoginForm(forms.Form):
    """A login: two strings (Django's CharField also refuses NUL characters, which PostgreSQL cannot store)."""

    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=4096, strip=False)

    def clean(self) -> dict[str, Any]:
        for name in ("username", "password"):
            if name in self.data and not isinstance(self.data[name], str):
                self.add_error(name, f"the {name} must be a string, not {type(self.data[name]).__name__}")
        return self.cleaned_data


class CloneForm(forms.Form):
    """The name of a clone (empty: the run's name with " (clone)")."""

    name = forms.CharField(max_length=200, required=False)


class RunCreateForm(forms.Form):
    """Types and bounds of a new run; the engine checks the rest (``services.run_create``)."""

    seed = forms.CharField(max_length=64)
    name = forms.CharField(max_length=200, required=False)
    terrain = forms.CharField(max_length=32, required=False)
    mutation = forms.CharField(max_length=32, required=False)
    model = forms.CharField(max_length=300, required=False)
    api_url = forms.CharField(max_length=300, required=False)
    api_model = forms.CharField(max_length=200, required=False)
    api_mode = forms.CharField(max_length=16, required=False)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, required=False)
    evals = forms.IntegerField(min_value=1, max_value=100_000_000, required=False)
    sim_seconds = forms.FloatField(min_value=0.1, max_value=120.0, required=False)
    rng_seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, required=False)
    dims = forms.JSONField(required=False)
    ranges = forms.JSONField(required=False)

    def clean_dims(self) -> list[int] | None:
        dims = self.cleaned_data["dims"]
        if dims is not None and not (
            isinstance(dims, list)
            and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_BINS for n in dims)
        ):
            raise ValidationError(
                f"dims must be a list of bin counts from 1 to {MAX_BINS}, e.g. [12, 12, 12]"
            )
        return dims

    def clean_ranges(self) -> list[list[float]] | None:
        ranges = self.cleaned_data["ranges"]
        if ranges is not None and not (isinstance(ranges, list) and all(map(_is_pair, ranges))):
            raise ValidationError(
                "ranges must be a list of [low, high] pairs, e.g. [[0, 10], [0, 10], [0, 5]]"
            )
        return ranges


def _is_pair(value: object) -> bool:
    """Whether ``value`` is ``[low, high]`` with two numbers."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


# -- session -----------------------------------------------------------------------------------
@api_view("GET", login_required=False)
def csrf(request: HttpRequest) -> JsonResponse:
    """The CSRF token (also set as the ``csrftoken`` cookie)."""
    return JsonResponse({"csrf_token": get_token(request)})


@api_view("POST", login_required=False)
def login_view(request: HttpRequest) -> JsonResponse:
    """Log in with ``{"username", "password"}``; answers the user and a fresh CSRF token."""
    given = valid(LoginForm(body(request)))
    user = authenticate(request, username=given["username"], password=given["password"])
    if user is None:
        return error(400, "wrong username or password (a first `make run` prints the admin's)")
    login(request, user)
    return JsonResponse({"username": user.get_username(), "csrf_token": get_token(request)})


@api_view("POST", login_required=False)
def logout_view(request: HttpRequest) -> JsonResponse:
    """Log out."""
    logout(request)
    return JsonResponse({"ok": True})


@api_view("GET", login_required=False)
def me(request: HttpRequest) -> JsonResponse:
    """Who is logged in."""
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"authenticated": False})
    return JsonResponse({"authenticated": True, "username": user.get_username(), "is_staff": user.is_staff})


# -- seeds -------------------------------------------------------------------------------------
@api_view("GET", "POST")
def seeds(request: HttpRequest) -> JsonResponse:
    """GET: every seed (``?enabled=1``: only enabled ones). POST (staff): create one."""
    if request.method == "POST":
        _require_staff(request)
        data = body(request)
        fields = {k: data[k] for k in services.SEED_FIELDS if k in data}
        fields |= {"name": str(data.get("name", "")), "text": str(data.get("text", ""))}
        seed = services.seed_create(created_by=request.user, **fields)
        return JsonResponse(selectors.seed_dict(seed, full=True), status=201)
    enabled_only = request.GET.get("enabled") in ("1", "true")
    return JsonResponse({"results": selectors.seed_list(enabled_only=enabled_only)})


@api_view("GET", "POST", "PATCH")
def seed_detail(request: HttpRequest, name: str) -> JsonResponse:
    """GET: one seed with its program. POST/PATCH (staff): change fields."""
    seed = selectors.seed_get(name=name)
    if request.method != "GET":
        _require_staff(request)
        seed = services.seed_update(seed=seed, **body(request))
    return JsonResponse(selectors.seed_dict(seed, full=True))


def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("only staff edit seeds")


# -- runs --------------------------------------------------------------------------------------
@api_view("GET", "POST")
def runs(request: HttpRequest) -> JsonResponse:
    """GET: runs, newest first (``?mine=1``, ``?status=``). POST: create a run."""
    if request.method == "POST":
        data = body(request)
        # A field sent as null (or left empty in a form) takes its default, like one left out.
        given = {k: v for k, v in valid(RunCreateForm(data)).items() if k in data and v is not None}
        run = services.run_create(owner=request.user, **given)
        return JsonResponse(selectors.run_dict(run, user=request.user), status=201)
    status = request.GET.get("status") or None
    if status is not None and status not in Run.Status.values:
        raise BadRequest(f"status={status!r} is not a run status; use one of {', '.join(Run.Status.values)}")
    owner = request.user if request.GET.get("mine") in ("1", "true") else None
    limit = query_int(request, "limit", default=100, low=1, high=MAX_PAGE)
    return JsonResponse({"results": selectors.run_list(owner=owner, status=status, limit=limit)})


@api_view("GET")
def run_detail(request: HttpRequest, run_id: int) -> JsonResponse:
    """One run: configuration, status, counters, last event id."""
    return JsonResponse(selectors.run_dict(_run(run_id), user=request.user))


ACTIONS = {
    "start": services.run_start,
    "pause": services.run_pause,
    "resume": services.run_resume,
    "stop": services.run_stop,
}


@api_view("POST")
def run_action(request: HttpRequest, run_id: int, action: str) -> JsonResponse:
    """POST /api/runs/<id>/<start|pause|resume|stop|clone>."""
    run = _run(run_id)
    if action == "clone":
        clone = services.run_clone(run=run, owner=request.user, name=valid(CloneForm(body(request)))["name"])
        return JsonResponse(selectors.run_dict(clone, user=request.user), status=201)
    if action not in ACTIONS:
        return error(404, f"unknown action {action!r}; use {', '.join([*ACTIONS, 'clone'])}")
    run = ACTIONS[action](run=run, user=request.user)
    return JsonResponse(selectors.run_dict(run, user=request.user))


@api_view("GET")
def run_metrics(request: HttpRequest, run_id: int) -> JsonResponse:
    """One row per batch (``?after_batch=N`` for the rows after batch N)."""
    after = query_int(request, "after_batch", default=-1, low=-1)
    return JsonResponse({"results": selectors.run_metrics(run=_run(run_id), after_batch=after)})


@api_view("GET")
def run_archive(request: HttpRequest, run_id: int) -> JsonResponse:
    """Every occupied cell with its elite's summary."""
    run = _run(run_id)
    return JsonResponse({"dims": run.dims, "ranges": run.ranges, "cells": selectors.run_archive(run=run)})


@api_view("GET")
def run_events(request: HttpRequest, run_id: int) -> JsonResponse:
    """Events after ``?after=<id>`` (what the WebSocket streams, for polling clients)."""
    run = _run(run_id)
    after = query_int(request, "after", default=0)
    limit = query_int(request, "limit", default=MAX_PAGE, low=1, high=MAX_PAGE)
    return JsonResponse({"results": selectors.event_list(run_id=run.pk, after=after, limit=limit)})


@api_view("GET")
def genomes(request: HttpRequest, run_id: int) -> JsonResponse:
    """A page of genomes: ``?outcome= &cell=3,4,5 &operator= &batch= &after=<gid> &limit=``."""
    run = _run(run_id)
    outcome = request.GET.get("outcome") or None
    if outcome is not None and outcome not in Genome.Outcome.values:
        raise BadRequest(f"outcome={outcome!r} is unknown; use one of {', '.join(Genome.Outcome.values)}")
    cell = request.GET.get("cell") or None
    if cell is not None:
        try:
            cell = ",".join(str(int(part)) for part in cell.split(","))
        except ValueError:
            raise BadRequest(f"cell={cell!r} is not a cell; write its coordinates, e.g. cell=3,4,5") from None
    page = selectors.genome_list(
        run=run,
        outcome=outcome,
        cell=cell,
        operator=request.GET.get("operator") or None,
        batch=query_int(request, "batch", default=None),
        after=query_int(request, "after", default=None),
        limit=query_int(request, "limit", default=50, low=1, high=MAX_PAGE) or 50,
    )
    return JsonResponse(page)


@api_view("GET")
def genome_detail(request: HttpRequest, run_id: int, gid: int) -> JsonResponse:
    """One genome: program, diff, evaluation, lineage (to the seed) and children."""
    return JsonResponse(selectors.genome_dict(_genome(run_id, gid)))


@api_view("GET")
def genome_trace(request: HttpRequest, run_id: int, gid: int) -> JsonResponse:
    """The genome's replay: frames as base64 float32 (only for genomes that were elites)."""
    trace = selectors.genome_trace(genome=_genome(run_id, gid))
    if trace is None:
        return error(404, f"genome {gid} has no replay: only elites get one, a moment after their batch")
    return JsonResponse(trace)


@api_view("GET")
def genome_lineage(request: HttpRequest, run_id: int, gid: int) -> JsonResponse:
    """The chain from the seed (first) to this genome (last), each step with its diff."""
    genome = _genome(run_id, gid)
    limit = query_int(request, "limit", default=1_000, low=1, high=10_000) or 1_000
    return JsonResponse({"results": selectors.genome_lineage_steps(genome=genome, limit=limit)})


@api_view("GET")
def genome_descendants(request: HttpRequest, run_id: int, gid: int) -> JsonResponse:
    """This genome and its descendants, nearest generations first (``?limit=``, at most 5000)."""
    genome = _genome(run_id, gid)
    limit = query_int(request, "limit", default=2_000, low=1, high=5_000) or 2_000
    return JsonResponse(selectors.genome_descendants(genome=genome, limit=limit))


@api_view("GET")
def seed_trace(request: HttpRequest, name: str) -> JsonResponse:
    """A replay of a seed's walker (``?terrain=flat``), simulated once and cached."""
    seed = selectors.seed_get(name=name)
    try:
        trace = selectors.seed_trace(seed=seed, terrain=request.GET.get("terrain") or "flat")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if trace is None:
        return error(404, f"seed {name!r} builds no walker now, so it has no replay; fix its program")
    return JsonResponse(trace)


def _run(run_id: int) -> Run:
    try:
        return selectors.run_get(run_id=run_id)
    except Run.DoesNotExist:
        raise Run.DoesNotExist(f"there is no run {run_id}") from None


def _genome(run_id: int, gid: int) -> Genome:
    try:
        return selectors.genome_get(run=_run(run_id), gid=gid)
    except Genome.DoesNotExist:
        raise Genome.DoesNotExist(f"run {run_id} has no genome {gid}") from None
