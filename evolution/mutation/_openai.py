"""``OpenAIBackend``: any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, hosted APIs).

Uses the standard library's ``urllib`` (no client dependency): one JSON POST per request, run
concurrently on a thread pool; the requests are few and large, so connection reuse would not
matter.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from typing import Any

from evolution.mutation._backends import MODES, BackendError, Message, check_sampling, cut_at_stop

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "OPENAI_API_KEY"
"""The environment variable the API key is read from when none is passed."""

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class OpenAIBackend:
    """A model served over the OpenAI HTTP API (``Backend``).

    ``generate`` POSTs to ``{url}/v1/completions`` and ``chat`` to ``{url}/v1/chat/completions``.
    Requests that fail to connect, time out, or get 408/429/5xx are retried after 0.5 s,
    1 s, 2 s...; other HTTP errors fail at once with the server's message.

    Args:
        url: The server's base URL, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is
            accepted too).
        model: Model name sent with each request (most servers need it; ``None`` sends none).
        api_key: Bearer token; ``None``: the ``OPENAI_API_KEY`` environment variable, if set.
        mode: ``"completions"`` or ``"chat"``: which endpoint the model is meant for (see
            ``Backend.mode``).
        concurrency: Requests in flight at once.
        timeout_s: Seconds to wait for one response.
        retries: Extra attempts per request after a retryable failure.
        batch_prompts: Send all prompts of a ``generate`` call in one completions request (a
            list ``prompt``) instead of one request per prompt.
        backoff_s: Wait before the first retry; doubled for each later one.

    Raises:
        ValueError: If ``url`` is not an http(s) URL, or for an unknown ``mode``, ``concurrency
            < 1``, ``timeout_s <= 0`` or ``retries < 0``.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        mode: str = "completions",
        concurrency: int = 8,
        timeout_s: float = 60.0,
        retries: int = 2,
        batch_prompts: bool = False,
        backoff_s: float = 0.5,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"the API URL must look like http://HOST:PORT (an OpenAI-compatible server), got {url!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if concurrency < 1 or timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise ValueError(
                "concurrency must be >= 1, timeout_s > 0, retries >= 0 and backoff_s >= 0; got "
                f"{concurrency!r}, {timeout_s!r}, {retries!r}, {backoff_s!r}"
            )
        base = url.rstrip("/")
        self.url = base[: -len("/v1")] if base.endswith("/v1") else base
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE)
        self.mode = mode
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.batch_prompts = batch_prompts
        self.backoff_s = backoff_s
        # a proxy set in the environment must not capture requests to this machine
        handlers = [urllib.request.ProxyHandler({})] if parsed.hostname in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r}, mode={self.mode!r})"

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[str]:
        """Continue each prompt through ``/v1/completions`` (see ``Backend.generate``).

        Request ``i`` of a call gets seed ``seed + i``, so equal prompts give different samples.

        Raises:
            BackendError: If a request still fails after its retries, or the answer is not a
                completions response.
            ValueError: For bad sampling arguments.
        """
        check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        base = self._body(max_new_tokens, temperature, top_p, stop)
        if self.batch_prompts and prompts:
            body = base | {"prompt": list(prompts)} | _seed(seed, 0)
            choices = _choices(self._post("/v1/completions", body), len(prompts))
            texts = [choice.get("text") for choice in sorted(choices, key=lambda c: c.get("index", 0))]
        else:
            bodies = [base | {"prompt": prompt} | _seed(seed, i) for i, prompt in enumerate(prompts)]
            answers = self._post_all("/v1/completions", bodies)
            texts = [_choices(answer, 1)[0].get("text") for answer in answers]
        return [cut_at_stop(_text(text, "text"), stop) for text in texts]

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[str]:
        """Answer each conversation through ``/v1/chat/completions`` (see ``Backend.chat``).

        Raises:
            BackendError: As ``generate``.
            ValueError: For bad sampling arguments.
        """
        check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        base = self._body(max_new_tokens, temperature, top_p, stop)
        bodies = [base | {"messages": list(messages)} | _seed(seed, i) for i, messages in enumerate(conversations)]
        answers = self._post_all("/v1/chat/completions", bodies)
        texts = [(_choices(answer, 1)[0].get("message") or {}).get("content") for answer in answers]
        return [cut_at_stop(_text(text, "message.content"), stop) for text in texts]

    def _body(self, max_new_tokens: int, temperature: float, top_p: float, stop: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "n": 1}
        if self.model is not None:
            body["model"] = self.model
        if stop:
            body["stop"] = list(stop)
        return body

    def _post_all(self, path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(bodies) <= 1 or self.concurrency == 1:
            return [self._post(path, body) for body in bodies]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            return list(pool.map(lambda body: self._post(path, body), bodies))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON and return the JSON answer, retrying what may pass next time.

        Raises:
            BackendError: With the URL, the reason and what to check.
        """
        url = self.url + path
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                error = _http_error(url, exc)
                if exc.code not in _RETRY_STATUS:
                    raise error from exc
            except (OSError, HTTPException) as exc:  # refused, reset, DNS, timeouts (URLError is an OSError)
                error = _connection_error(url, exc, self.timeout_s)
            else:
                try:
                    answer = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise BackendError(f"{url} answered with something that is not JSON: {raw[:200]!r}") from exc
                if not isinstance(answer, dict):
                    raise BackendError(f"{url} answered with JSON that is not an object: {raw[:200]!r}")
                return answer
            if attempt < self.retries:
                wait = self.backoff_s * 2**attempt
                log.info("%s; retrying in %.1f s (attempt %d of %d)", error, wait, attempt + 2, self.retries + 1)
                time.sleep(wait)
        raise error


def _seed(seed: int | None, i: int) -> dict[str, int]:
    return {} if seed is None else {"seed": (seed + i) % 2**31}


def _choices(answer: dict[str, Any], at_least: int) -> list[dict[str, Any]]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or len(choices) < at_least or not all(isinstance(c, dict) for c in choices):
        raise BackendError(f"expected an OpenAI response with {at_least} choice(s), got {json.dumps(answer)[:200]}")
    return choices


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BackendError(f"the server's answer has no text in choices[].{field} (got {value!r})")
    return value


def _http_error(url: str, exc: urllib.error.HTTPError) -> BackendError:
    try:
        detail = exc.read().decode("utf-8", errors="replace")
        parsed = json.loads(detail)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            detail = parsed["error"].get("message", detail)
    except (OSError, ValueError):
        detail = exc.reason
    hints = {
        401: "; set OPENAI_API_KEY in the environment to a valid key",
        403: "; check that the API key may use this model",
        404: "; check --api-url (the server's base URL, without /v1/...) and that it serves this endpoint "
        "(chat-only services need --api-mode chat)",
    }
    return BackendError(f"HTTP {exc.code} from {url}: {str(detail)[:300]}{hints.get(exc.code, '')}")


def _connection_error(url: str, exc: BaseException, timeout_s: float) -> BackendError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError, socket.timeout)) or isinstance(exc, (TimeoutError, socket.timeout)):
        return BackendError(
            f"no answer from {url} within {timeout_s:g} s; the server is overloaded or stuck, or raise timeout_s"
        )
    return BackendError(
        f"cannot reach {url}: {reason}; check that the model server is running and that --api-url "
        "names it (e.g. http://127.0.0.1:8765; start one with `python -m evolution serve-model --model PATH`)"
    )
