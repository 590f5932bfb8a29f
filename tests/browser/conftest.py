"""Fixtures of the browser tests: a live lab, Debian's Chromium driven by Playwright, screenshots.

- ``lab`` (session): daphne + a real Celery worker on a fresh database (:mod:`tests.browser.lab`).
- ``browser`` (session): headless ``/usr/bin/chromium`` launched by Playwright (sync API); no
  browser is ever downloaded (``make install`` installs Debian's package).
- ``staff_state`` (session): the cookies of the lab's staff user, logged in once through
  ``/accounts/login/``.
- ``context`` / ``page`` (per test): a logged-in browser context and its page; the page's
  console errors and uncaught exceptions are collected in ``page_errors``, and a screenshot of
  the page is saved to ``var/screenshots/<test name>.png`` when the test ends, passed or failed.
- ``api``: the JSON API with the same session as the page (to set up runs and check numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import Api, PageErrors
from tests.browser.lab import ROOT, LabError, LiveLab

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = ROOT / "var" / "screenshots"  # var/ is git-ignored; `make clean` removes it
TIMEOUT_MS = 15_000  # Playwright's default wait for one action or assertion


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLab]:
    """Daphne and a real Celery worker on a fresh database, stopped when the session ends."""
    live = LiveLab(tmp_path_factory.mktemp("lab"))
    try:
        try:
            live.start()
        except LabError as exc:
            pytest.fail(f"the live lab did not start: {exc}", pytrace=False)
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="session")
def browser(lab: LiveLab) -> Iterator[Any]:
    """Headless Debian Chromium, driven by Playwright's sync API.

    It needs ``lab`` only to come after it: the lab forks its processes (with a
    ``preexec_fn``) before Playwright's driver and its watcher thread exist.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make install`", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(page: Any, lab: LiveLab, *, next: str = "/admin/") -> None:
    """Log in through the login page, as a person does, landing on ``next``."""
    page.goto(f"{lab.url}/accounts/login/?next={next}")
    page.fill("#id_username", lab.username)
    page.fill("#id_password", lab.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/accounts/login/" in page.url:
        raise AssertionError(f"the login page refused {lab.username}: {page.inner_text('main')}")


@pytest.fixture(scope="session")
def staff_state(browser: Any, lab: LiveLab) -> dict[str, Any]:
    """The storage state (cookies) of the staff user, logged in once for the session."""
    context = browser.new_context(base_url=lab.url)
    try:
        log_in(context.new_page(), lab)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def context(browser: Any, lab: LiveLab, staff_state: dict[str, Any]) -> Iterator[Any]:
    """A browser context logged in as the staff user."""
    context = browser.new_context(
        base_url=lab.url, storage_state=staff_state, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def screenshot_path(request: pytest.FixtureRequest) -> Path:
    """``var/screenshots/<test name>.png`` (parameters kept, odd characters replaced)."""
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"


@pytest.fixture
def page(context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of ``context``; its screenshot is saved when the test ends, even on failure."""
    page = context.new_page()
    page.errors = PageErrors.watch(page)
    try:
        yield page
    finally:
        take_screenshot(page, screenshot_path(request))


def take_screenshot(page: Any, path: Path) -> None:
    """Save a full-page screenshot of ``page``; a closed or crashed page saves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(path), full_page=True, timeout=10_000)
    except Exception as exc:  # noqa: BLE001 - a screenshot must never hide the test's own result
        print(f"no screenshot for {path.name}: {exc}")


@pytest.fixture
def page_errors(page: Any) -> PageErrors:
    """The console errors and uncaught exceptions of ``page`` so far."""
    return page.errors


@pytest.fixture
def api(context: Any, lab: LiveLab) -> Api:
    """The JSON API, logged in with the page's cookies."""
    return Api(context.request, lab)


@pytest.fixture(scope="session")
def finished_run(browser: Any, lab: LiveLab, staff_state: dict[str, Any]) -> dict[str, Any]:
    """A small GP run stepped to its end by the real worker, its elites' replays recorded."""
    context = browser.new_context(base_url=lab.url, storage_state=staff_state)
    try:
        api = Api(context.request, lab)
        run = api.create_run(name="finished (browser tests)")
        api.post(f"/api/runs/{run['id']}/start")
        run = api.wait_for_run(run["id"], lambda r: r["status"] != "running", timeout=180, what="the end")
        assert run["status"] == "finished", run
        last = run["batches"] - 1
        elites = [
            g["gid"] for g in api.get(f"/api/runs/{run['id']}/genomes?batch={last}&limit=500")["results"]
            if g["outcome"] in ("new_cell", "improved")
        ] or [0]  # no elite in the last batch: the seed's replay is recorded first anyway
        for gid in elites:
            api.wait_for_run(
                run["id"],
                lambda _, gid=gid: api.get(f"/api/runs/{run['id']}/genomes/{gid}")["evaluation"]["has_trace"],
                timeout=60, what=f"the replay of genome {gid}",
            )  # fmt: skip
        return run
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the page's errors and the tail of the lab's logs."""
    report = yield
    if report.failed:
        page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
        if page is not None and getattr(page, "errors", None):
            report.sections.append(("page errors", str(page.errors)))
        live = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
        if isinstance(live, LiveLab):
            report.sections.append(("live lab logs", live.logs(tail=3000)))
    return report
