"""Scenarios of the lab's pages in a real Chromium, against a live server and a real worker.

The pages' DOM contract (what these tests read and click):

- dashboard ``/``: ``form#new-run-form`` (fields named as the API's create-run fields,
  ``button[type=submit]``); per run an element ``[data-run-id]`` holding ``.run-status``,
  ``button[data-action=start|pause|resume|stop]`` and ``a.run-link`` to ``/runs/<id>/``;
- run page ``/runs/<id>/``: ``#run-status``, ``canvas#archive-map[data-filled]``,
  ``#genome-feed a[href^="/genomes/"]``, the same controls, ``#evaluations``;
- genome page ``/genomes/<id>/``: ``canvas#replay[data-frame]`` (autoplays), ``a#lineage-link``,
  ``#program``, ``#diff``;
- lineage page: ``ol#lineage`` of ``li[data-genome-id]`` down to the seed, ``#descendants``;
- a finished stage-2 model's page ``/models/<id>/``: ``form#inventor-form`` (fields named as the
  API's stage-3 fields, advanced ones in a ``details``, error slots ``[data-error-for]``);
- an inventor's page ``/models/<id>/``: ``#model-status[data-status]``, ``#reward-legend
  li[data-terrain] .reward-last``, ``#evaluation-table tbody tr[data-terrain]``,
  ``canvas.replay[data-terrain][data-source=conditional|unconditional][data-frame]``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from tests.browser.helpers import (
    SMALL_RUN,
    Api,
    PageErrors,
    number,
    read_number,
    visible,
    wait_for_number,
    wait_for_text,
)
from tests.browser.lab import LiveLab

NO_RELOAD_MARK = "window.__elmwebNoReload"
SETTLE_MS = 1_000  # how long a page may take to show an error after it loaded
RUN_PAGE = re.compile(r"/runs/(\d+)/$")


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def mark_page(page: Any) -> list[str]:
    """Set a marker that only a reload or navigation clears; return the main frame's navigations."""
    page.evaluate(f"{NO_RELOAD_MARK} = 'kept'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    return navigations


def assert_not_reloaded(page: Any, navigations: list[str]) -> None:
    assert page.evaluate(NO_RELOAD_MARK) == "kept", "the page was reloaded"
    assert navigations == [], f"the page navigated: {navigations}"


def fill_form(page: Any, form: str, values: dict[str, Any]) -> list[str]:
    """Fill the fields of ``form`` that exist (inputs or selects); return the names filled."""
    filled = []
    for name, value in values.items():
        field = page.locator(f'{form} [name="{name}"]')
        if field.count() == 0:
            continue
        if field.first.evaluate("element => element.tagName") == "SELECT":
            field.first.select_option(str(value))
        else:
            field.first.fill(str(value))
        filled.append(name)
    return filled


def create_run_from_form(page: Any, api: Api, **config: Any) -> int:
    """Fill and submit the dashboard's form; return the new run's id.

    After submitting, the dashboard either shows the run without a reload or navigates to
    the run's page; either is accepted, the first is checked for a reload.
    """
    page.goto("/")
    name = config.setdefault("name", unique("form run"))
    filled = fill_form(page, "#new-run-form", config)
    assert {"seed", "name", "evals", "batch_size"} <= set(filled), f"the form lacks fields: only {filled}"
    navigations = mark_page(page)
    page.locator("#new-run-form button[type=submit]").click()
    run = api.wait_until(lambda: api.runs_named(name), timeout=15, what=f"a run named {name!r}")[0]
    page.wait_for_function(
        """([id, pattern]) => new RegExp(pattern).test(location.pathname)
            || document.querySelector(`[data-run-id="${id}"]`) !== null""",
        arg=[str(run["id"]), rf"^/runs/{run['id']}/$"],
    )
    if RUN_PAGE.search(page.url) is None:
        assert_not_reloaded(page, navigations)
        row = page.locator(f'[data-run-id="{run["id"]}"]')
        wait_for_text(page, f'[data-run-id="{run["id"]}"] .run-status', "created")
        assert row.locator("a.run-link").get_attribute("href").endswith(f"/runs/{run['id']}/")
    return int(run["id"])


def open_run_page(page: Any, run_id: int) -> None:
    if RUN_PAGE.search(page.url) is None or int(RUN_PAGE.search(page.url).group(1)) != run_id:
        page.goto(f"/runs/{run_id}/")
    page.wait_for_selector("#run-status")


def genome_pk(api: Api, run_id: int, gid: int) -> int:
    """The genome's page id (``/genomes/<pk>/``), found through ``/runs/<id>/genomes/<gid>/``."""
    response = api.request.get(f"{api.lab.url}/runs/{run_id}/genomes/{gid}/")
    match = re.search(r"/genomes/(\d+)/$", response.url)
    assert response.ok and match, f"/runs/{run_id}/genomes/{gid}/ led to {response.url} ({response.status})"
    return int(match.group(1))


def replayed_genomes(api: Api, run_id: int) -> set[int]:
    """Page ids of the run's genomes that have a replay (elites with a recorded trace)."""
    elites = [
        g["gid"] for g in api.get(f"/api/runs/{run_id}/genomes?limit=500")["results"]
        if g["outcome"] in ("new_cell", "improved")
    ]  # fmt: skip
    traced = [g for g in elites if api.get(f"/api/runs/{run_id}/genomes/{g}")["evaluation"]["has_trace"]]
    return {genome_pk(api, run_id, gid) for gid in traced}


def feed_links(page: Any) -> list[str]:
    page.wait_for_selector('#genome-feed a[href^="/genomes/"]')
    hrefs = page.eval_on_selector_all(
        '#genome-feed a[href^="/genomes/"]', "links => links.map(a => a.getAttribute('href'))"
    )
    return list(dict.fromkeys(hrefs))


def pk_of(href: str) -> int:
    return int(re.search(r"/genomes/(\d+)/", href).group(1))


# -- scenarios ---------------------------------------------------------------------------------
def test_a_run_created_from_the_form_fills_archive_cells_live_without_a_reload(page: Any, api: Api) -> None:
    run_id = create_run_from_form(page, api, **SMALL_RUN)
    try:
        open_run_page(page, run_id)
        wait_for_text(page, "#run-status", "created")
        navigations = mark_page(page)
        page.evaluate("""() => {
            const map = document.querySelector("canvas#archive-map");
            window.__filledSeen = [map.dataset.filled];
            new MutationObserver(() => window.__filledSeen.push(map.dataset.filled))
                .observe(map, {attributes: true, attributeFilter: ["data-filled"]});
        }""")
        visible(page, 'button[data-action="start"]').click()

        wait_for_text(page, "#run-status", "finished", timeout=120_000)
        cells = len(api.get(f"/api/runs/{run_id}/archive")["cells"])
        wait_for_number(page, "canvas#archive-map", f"n === {cells}", attribute="data-filled", timeout=10_000)

        seen = [int(v) for v in page.evaluate("window.__filledSeen") if v not in (None, "")]
        assert len(set(seen)) >= 3, f"data-filled changed only through {seen}: cells should appear as batches end"
        assert seen == sorted(seen) and seen[-1] == cells > 1
        assert read_number(page, "#evaluations") == SMALL_RUN["evals"]
        assert_not_reloaded(page, navigations)
    finally:
        api.stop_quietly(run_id)


def test_pausing_a_run_stops_its_evaluations_and_resuming_makes_them_grow_again(page: Any, api: Api) -> None:
    run_id = api.create_run(name=unique("pause run"), evals=20_000)["id"]
    try:
        open_run_page(page, run_id)
        navigations = mark_page(page)
        visible(page, 'button[data-action="start"]').click()
        wait_for_text(page, "#run-status", "running")
        wait_for_number(page, "#evaluations", "n >= 40", timeout=60_000)

        visible(page, 'button[data-action="pause"]').click()
        wait_for_text(page, "#run-status", "paused", timeout=60_000)
        stored = api.run(run_id)["evaluations"]
        paused_at = wait_for_number(page, "#evaluations", f"n === {stored}", timeout=10_000)
        page.wait_for_timeout(3_000)
        assert read_number(page, "#evaluations") == paused_at
        assert api.run(run_id)["evaluations"] == paused_at

        visible(page, 'button[data-action="resume"]').click()
        wait_for_text(page, "#run-status", "running")
        wait_for_number(page, "#evaluations", f"n > {paused_at}", timeout=60_000)

        visible(page, 'button[data-action="stop"]').click()
        wait_for_text(page, "#run-status", "finished", timeout=60_000)
        assert_not_reloaded(page, navigations)
    finally:
        api.stop_quietly(run_id)


def test_a_genome_opened_from_the_feed_replays_its_walker_frame_after_frame(
    page: Any, api: Api, finished_run: dict[str, Any]
) -> None:
    open_run_page(page, finished_run["id"])
    replayed = replayed_genomes(api, finished_run["id"])
    links = [href for href in feed_links(page) if pk_of(href) in replayed]
    assert links, f"the feed links no genome with a replay (genomes with one: {sorted(replayed)})"

    page.locator(f'#genome-feed a[href="{links[0]}"]').first.click()
    page.wait_for_url(f"**{links[0]}")
    canvas = page.locator("canvas#replay")
    first = wait_for_number(page, "canvas#replay", "n >= 0", attribute="data-frame")
    before = canvas.evaluate("canvas => canvas.toDataURL()")
    shot_before = canvas.screenshot()
    wait_for_number(page, "canvas#replay", f"n !== {first}", attribute="data-frame", timeout=10_000)
    page.wait_for_timeout(300)  # a few more frames: the walker moves between them

    assert canvas.evaluate("canvas => canvas.toDataURL()") != before, "the canvas shows the same pixels"
    assert canvas.screenshot() != shot_before
    assert page.locator("#program").inner_text().strip()
    assert page.locator("#diff").count() == 1
    assert page.locator("a#lineage-link").count() == 1


def test_the_lineage_of_a_genome_leads_back_to_the_seed(page: Any, api: Api, finished_run: dict[str, Any]) -> None:
    run_id = finished_run["id"]
    seed = genome_pk(api, run_id, 0)
    last = api.get(f"/api/runs/{run_id}/genomes?batch={finished_run['batches'] - 1}")["results"][0]
    lineage = api.get(f"/api/runs/{run_id}/genomes/{last['gid']}")["lineage"]  # the genome first
    expected = [genome_pk(api, run_id, step["gid"]) for step in lineage]
    page.goto(f"/genomes/{expected[0]}/")

    page.locator("a#lineage-link").click()
    page.wait_for_selector("ol#lineage li[data-genome-id]")

    items = page.locator("ol#lineage li[data-genome-id]")
    steps = [int(i) for i in items.evaluate_all("items => items.map(li => li.dataset.genomeId)")]
    assert len(expected) >= 2 and expected[-1] == seed
    assert steps in (expected, expected[::-1]), f"the lineage shows {steps}, the API says {expected}"
    assert page.locator("#descendants").count() == 1
    page.goto(f"/genomes/{seed}/")
    seed_text = api.get(f"/api/runs/{run_id}/genomes/0")["text"]
    assert page.locator("#program").inner_text().split() == seed_text.split()


def test_the_dashboard_lists_a_finished_run_with_its_status_link_and_controls(
    page: Any, finished_run: dict[str, Any]
) -> None:
    page.goto("/")
    row = page.locator(f'[data-run-id="{finished_run["id"]}"]')

    wait_for_text(page, f'[data-run-id="{finished_run["id"]}"] .run-status', "finished")
    assert row.locator("a.run-link").get_attribute("href").endswith(f"/runs/{finished_run['id']}/")
    for action in ("start", "pause", "resume", "stop"):
        assert row.locator(f'button[data-action="{action}"]').count() == 1, f"no {action} button"


def test_every_page_of_the_lab_loads_without_console_errors(
    page: Any, page_errors: PageErrors, api: Api, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["id"]
    genome = genome_pk(api, run_id, 1)
    answers = {}
    paths = ("/", f"/runs/{run_id}/", f"/genomes/{genome}/", f"/compare/?runs={run_id}", "/seeds/", "/models/",
             "/accounts/login/", "/admin/")
    for path in paths:
        answers[path] = page.goto(path).status
        page.wait_for_timeout(SETTLE_MS)  # modules load, sockets open, first data arrives
    page.goto(f"/genomes/{genome}/")
    with page.expect_navigation() as lineage:
        page.locator("a#lineage-link").click()
    answers[page.url] = lineage.value.status
    page.wait_for_selector("ol#lineage li[data-genome-id]")
    page.wait_for_timeout(SETTLE_MS)

    assert all(status == 200 for status in answers.values()), answers
    assert not page_errors, str(page_errors)


def test_the_best_walker_replay_shows_when_its_trace_is_recorded_after_the_run_ended(
    page: Any, api: Api, lab: LiveLab
) -> None:
    run_id = api.create_run(name=unique("best walker run"), evals=64)["id"]
    try:
        api.post(f"/api/runs/{run_id}/start")
        api.wait_for_run(run_id, lambda r: r["status"] == "finished", timeout=120, what="the end")
        cells = api.get(f"/api/runs/{run_id}/archive")["cells"]
        best = [c for c in cells if c["fitness"] == max(c["fitness"] for c in cells)]
        for cell in best:
            api.wait_until(
                lambda gid=cell["gid"]: api.get(f"/api/runs/{run_id}/genomes/{gid}")["evaluation"]["has_trace"],
                timeout=60, what=f"the replay of genome {cell['gid']}",
            )  # fmt: skip
        # As when the run ends before the worker records the best's trace: take it away again.
        gids = [c["gid"] for c in best]
        lab.manage("shell", "--verbosity", "0", "--command", (
            "from elmweb.runs.models import Evaluation; "
            f"Evaluation.objects.filter(genome__run_id={run_id}, genome__gid__in={gids}).update(trace=None)"
        ))  # fmt: skip
        page.clock.install()
        open_run_page(page, run_id)
        page.clock.pause_at(int(time.time() * 1000) + 60_000)  # no timer fires from now on
        page.wait_for_function(
            "gids => gids.some((gid) => document.querySelector('#best-empty').textContent.includes(`Genome ${gid} leads`))",
            arg=gids,
        )
        navigations = mark_page(page)

        batches = sorted({c["batch"] for c in best})
        lab.manage("shell", "--verbosity", "0", "--command", (
            "from elmweb.runs import services; "
            f"[services.run_record_traces(run_id={run_id}, batch=b) for b in {batches}]"
        ))  # fmt: skip

        page.locator("#best-link").wait_for(state="visible", timeout=30_000)
        assert number(page.locator("#best-link").inner_text()) in gids
        assert page.locator("#best-empty").is_hidden()
        assert page.locator("canvas#best-replay").get_attribute("data-frame") is not None
        assert_not_reloaded(page, navigations)
    finally:
        page.clock.resume()  # the screenshot shows the page drawn
        page.wait_for_timeout(500)
        api.stop_quietly(run_id)


def test_the_compare_page_follows_its_runs_live_without_a_reload(
    page: Any, page_errors: PageErrors, api: Api, finished_run: dict[str, Any]
) -> None:
    run_id = api.create_run(name=unique("compared run"), evals=64)["id"]
    try:
        page.goto(f"/compare/?runs={finished_run['id']},{run_id}")
        live_map = f'canvas.compare-map[data-run-id="{run_id}"]'
        coverage = 'canvas.curve[data-key="coverage"]'
        wait_for_number(page, coverage, f"n === {finished_run['batches']}", attribute="data-points")
        navigations = mark_page(page)

        api.post(f"/api/runs/{run_id}/start")
        run = api.wait_for_run(run_id, lambda r: r["status"] == "finished", timeout=120, what="the end")
        cells = len(api.get(f"/api/runs/{run_id}/archive")["cells"])

        wait_for_text(page, f'.compare-legend li[data-run-id="{run_id}"] .status-badge', "finished")
        wait_for_number(page, live_map, f"n === {cells}", attribute="data-filled", timeout=10_000)
        wait_for_number(page, coverage, f"n === {finished_run['batches'] + run['batches']}", attribute="data-points")
        assert_not_reloaded(page, navigations)
        assert not page_errors, str(page_errors)
    finally:
        api.stop_quietly(run_id)


@pytest.fixture(autouse=True)
def _lab_alive(lab: LiveLab) -> None:
    """Each scenario starts with daphne and the worker up (a dead one fails with its logs)."""
    lab.check_alive()


def test_the_train_a_model_form_refuses_to_start_without_a_run_and_says_so_next_to_the_runs(
    page: Any, page_errors: PageErrors, finished_run: dict[str, Any]
) -> None:
    page.goto("/models/")
    page.wait_for_selector(f'input[name="runs"][value="{finished_run["id"]}"]')
    page.evaluate("window.__still_here = true")
    page.locator('#new-model-form button[type="submit"]').click()
    slot = page.locator('[data-error-for="runs"]')
    slot.wait_for(state="visible")
    assert "run" in slot.inner_text().lower()
    assert page.evaluate("window.__still_here === true")  # no navigation, nothing posted
    assert not page_errors, str(page_errors)


TINY_STAGE3 = {"iterations": 2, "batch_size": 3, "max_new_tokens": 24, "sim_seconds": 1, "samples": 2, "conditional": 1}


def test_stage3_started_from_a_trained_model_streams_rewards_then_shows_its_evaluation_and_replays(
    page: Any, page_errors: PageErrors, api: Api, finished_run: dict[str, Any]
) -> None:
    stage2 = api.post("/api/models", {"runs": [finished_run["id"]], "heldout": 0, "max_steps": 2, "samples": 2,
                                      "name": unique("stage 2")})
    done = api.wait_until(lambda: (m := api.get(f"/api/models/{stage2['id']}"))["status"] in ("done", "failed") and m,
                          timeout=240, what="the stage-2 model to finish")
    assert done["status"] == "done", done["error"]
    page.goto(f"/models/{stage2['id']}/")
    page.locator("#inventor-form details summary").click()  # the advanced settings
    fill_form(page, "#inventor-form", {**TINY_STAGE3, "batch_size": 2})
    page.locator('#inventor-form button[type="submit"]').click()
    slot = page.locator('#inventor-form [data-error-for="batch_size"]')
    slot.wait_for(state="visible")
    assert "at least 3" in slot.inner_text(), "the API's refusal is shown next to the field"

    fill_form(page, "#inventor-form", TINY_STAGE3)
    with page.expect_navigation():
        page.locator('#inventor-form button[type="submit"]').click()
    page.wait_for_selector('#model-status[data-status="done"]', timeout=240_000)
    legend = page.locator('#reward-legend li[data-terrain="tunnel"] .reward-last')
    assert "valid" in legend.inner_text(), "the tunnel's last reward is in the legend"
    page.wait_for_selector("#evaluation-table tbody tr[data-terrain]")
    assert page.locator("#evaluation-table tbody tr").count() == 3
    headers = page.locator("#evaluation-table thead th").count()
    assert page.locator("#evaluation-table tbody tr").first.locator("td").count() == headers == 9, "a cell per column"
    # the dataset's programs (the run's walkers) walk on every terrain: each is replayed
    for terrain in ("left-wall", "right-wall", "tunnel"):
        page.wait_for_selector(f'canvas.replay[data-terrain="{terrain}"][data-source="unconditional"][data-frame]',
                               timeout=60_000)
    unexpected = [m for m in page_errors.messages if "400 (Bad Request)" not in m or "/stage3" not in m]
    assert not unexpected, "only the refused start may show in the console"
