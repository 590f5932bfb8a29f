"""The browser-test machinery itself: the live lab, its real worker, Chromium, logging in."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import log_in
from tests.browser.helpers import Api, PageErrors
from tests.browser.lab import LiveLab


def test_a_staff_user_logs_in_through_the_login_page_and_opens_the_admin(
    browser: Any, lab: LiveLab, page: Any
) -> None:
    fresh = browser.new_context(base_url=lab.url)  # no cookies: a visitor who has not logged in
    try:
        visitor = fresh.new_page()
        errors = PageErrors.watch(visitor)
        log_in(visitor, lab, next="/admin/")

        assert visitor.url == f"{lab.url}/admin/"
        assert visitor.locator("#site-name").inner_text().strip() == "Django administration"
        assert lab.username in visitor.locator("#user-tools").text_content()
        assert visitor.evaluate("fetch('/api/me').then(r => r.json())") == {
            "authenticated": True, "username": lab.username, "is_staff": True,
        }  # fmt: skip
        assert not errors, str(errors)
        page.goto("/admin/")  # the screenshot of this test shows the admin as the staff user sees it
    finally:
        fresh.close()


def test_the_real_worker_steps_a_small_run_to_the_end_and_records_its_replays(
    finished_run: dict[str, Any], api: Api
) -> None:
    run = api.run(finished_run["id"])
    cells = api.get(f"/api/runs/{run['id']}/archive")["cells"]

    assert (run["status"], run["evaluations"]) == ("finished", 200)
    assert run["niches_filled"] == len(cells) > 1
    seed = api.get(f"/api/runs/{run['id']}/genomes/0")
    assert seed["parent_gid"] is None and seed["evaluation"]["has_trace"]
