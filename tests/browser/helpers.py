"""Helpers of the browser tests: the JSON API beside the page, page errors, numbers in the DOM."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.browser.lab import LiveLab

#: What a small run of the browser tests asks for (GP mutation: no model, fast).
SMALL_RUN = {"seed": "square", "mutation": "gp", "batch_size": 16, "evals": 200, "sim_seconds": 1.0}


class Api:
    """The lab's JSON API through a Playwright request context (the page's cookies)."""

    def __init__(self, request: Any, lab: LiveLab) -> None:
        self.request = request
        self.lab = lab
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = self.get("/api/csrf")["csrf_token"]
        return self._token

    def get(self, path: str) -> Any:
        return self._answer(self.request.get(self.lab.url + path), "GET", path)

    def post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.request.post(
            self.lab.url + path,
            data=json.dumps(data or {}),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.token()},
        )
        return self._answer(response, "POST", path)

    def _answer(self, response: Any, method: str, path: str) -> Any:
        if not response.ok:
            raise AssertionError(f"{method} {path} answered {response.status}: {response.text()[:500]}")
        return response.json()

    # -- runs ------------------------------------------------------------------------------
    def run(self, run_id: int) -> dict[str, Any]:
        return self.get(f"/api/runs/{run_id}")

    def create_run(self, **config: Any) -> dict[str, Any]:
        return self.post("/api/runs", {**SMALL_RUN, **config})

    def runs_named(self, name: str) -> list[dict[str, Any]]:
        return [run for run in self.get("/api/runs?mine=1")["results"] if run["name"] == name]

    def stop_quietly(self, run_id: int) -> None:
        """Stop the run if it has not ended (so the shared worker is free for the next test)."""
        if self.run(run_id)["status"] not in ("finished", "failed"):
            self.post(f"/api/runs/{run_id}/stop")

    def wait_until(self, condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Poll ``condition()`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            if time.monotonic() > deadline:
                self.lab.check_alive()
                raise AssertionError(f"waited {timeout:.0f} s for {what} (the lab's logs follow the traceback)")
            time.sleep(0.25)
        return value

    def wait_for_run(
        self, run_id: int, condition: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the run until ``condition(run)``; fail with the run and the lab's logs."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if condition(run):
                return run
            if run["status"] == "failed" or time.monotonic() > deadline:
                self.lab.check_alive()
                raise AssertionError(f"run {run_id}: waited {timeout:.0f} s for {what}; it is {run}")
            time.sleep(0.25)


@dataclass
class PageErrors:
    """Console errors and uncaught exceptions of one page, as they happen."""

    messages: list[str] = field(default_factory=list)

    @classmethod
    def watch(cls, page: Any) -> PageErrors:
        errors = cls()

        def console(message: Any) -> None:
            if message.type == "error":
                errors.messages.append(f"console: {message.text} ({message.location.get('url', '')})")

        page.on("console", console)
        page.on("pageerror", lambda exc: errors.messages.append(f"uncaught: {exc}"))
        return errors

    def __bool__(self) -> bool:
        return bool(self.messages)

    def __str__(self) -> str:
        return "\n".join(self.messages) or "(none)"


def number(text: str | None) -> int | None:
    """The first integer in ``text`` (thousands separators allowed), or ``None``."""
    if text is None:
        return None
    match = re.search(r"\d+", re.sub(r"(?<=\d)[,\s\u202f\u00a0'](?=\d{3}\b)", "", text))
    return int(match.group()) if match else None


def wait_for_number(
    page: Any, selector: str, predicate: str, *, attribute: str | None = None, timeout: float = 30_000
) -> int:
    """Wait until the integer in ``selector``'s text (or ``attribute``) satisfies ``predicate``.

    Args:
        page: The page.
        selector: A CSS selector.
        predicate: A JavaScript expression of ``n``, e.g. ``"n > 3"``.
        attribute: Read this attribute instead of the element's text.
        timeout: Milliseconds.

    Returns:
        The number once it satisfies ``predicate``.
    """
    script = """([selector, attribute, predicate]) => {
        const element = document.querySelector(selector);
        if (!element) return false;
        const raw = attribute ? element.getAttribute(attribute) : element.textContent;
        const match = (raw || "").replace(/(\\d)[,\\s\\u202f\\u00a0'](?=\\d{3}\\b)/g, "$1").match(/\\d+/);
        if (!match) return false;
        const n = Number(match[0]);
        return new Function("n", "return (" + predicate + ");")(n) ? n : false;
    }"""
    found = page.wait_for_function(script, arg=[selector, attribute, predicate], timeout=timeout)
    return int(found.json_value())


def read_number(page: Any, selector: str, *, attribute: str | None = None) -> int | None:
    """The integer in ``selector``'s text (or ``attribute``) now, or ``None``."""
    element = page.locator(selector).first
    raw = element.get_attribute(attribute) if attribute else element.text_content()
    return number(raw)


def wait_for_text(page: Any, selector: str, text: str, *, timeout: float = 30_000) -> None:
    """Wait until ``selector``'s text, stripped and lower-cased, is ``text``."""
    page.wait_for_function(
        """([selector, text]) => {
            const element = document.querySelector(selector);
            return element !== null && element.textContent.trim().toLowerCase() === text;
        }""",
        arg=[selector, text],
        timeout=timeout,
    )


def visible(page: Any, selector: str) -> Any:
    """The first visible element matching ``selector`` (controls may be hidden by status)."""
    return page.locator(selector).locator("visible=true").first
