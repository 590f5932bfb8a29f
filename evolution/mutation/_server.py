"""A small OpenAI-compatible HTTP server for any local transformers model.

``python -m evolution serve-model --model PATH`` serves ``GET /v1/models``, ``POST
/v1/completions`` and ``POST /v1/chat/completions`` (the subset ``OpenAIBackend`` and most
clients use: ``prompt`` as a string or a list, ``max_tokens``, ``temperature``, ``top_p``,
``stop``, ``seed``, ``n=1``). Requests are handled on threads, but generation is serialised by
the model's lock; a request's prompt list is generated as one batch. Meant for tests and for
sharing one model between processes on a trusted machine, not for the open internet.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from evolution.mutation._backends import chat_prompt
from evolution.mutation._transformers import TransformersBackend

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 2**20


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400."""


def make_server(
    model: str | Path, *, host: str = "127.0.0.1", port: int = 8765, device: str | None = None, max_batch: int = 32
) -> ThreadingHTTPServer:
    """A server (not yet serving) for the model in folder ``model``; call ``serve_forever()``.

    Args:
        model: Hugging Face model folder.
        host: Interface to listen on.
        port: TCP port (0: any free one; see ``server.server_address``).
        device: As ``TransformersBackend``.
        max_batch: Prompts per generation call.

    Raises:
        FileNotFoundError: If ``model`` is not a model folder.
        OSError: If the address is in use or not available.
    """
    backend = TransformersBackend(model, device=device, max_batch=max_batch)
    name = Path(model).name

    class Handler(_Handler):
        pass

    Handler.backend, Handler.model_name = backend, name
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class _Handler(BaseHTTPRequestHandler):
    backend: TransformersBackend
    model_name: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "elmweb"}]
            self._send(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no such endpoint {self.path}; use GET /v1/models", "not_found_error")

    def do_POST(self) -> None:  # noqa: N802
        routes = {"/v1/completions": self._completions, "/v1/chat/completions": self._chat}
        route = routes.get(self.path.rstrip("/"))
        if route is None:
            self._error(404, f"no such endpoint {self.path}; use {' or '.join(routes)}", "not_found_error")
            return
        try:
            self._send(200, route(self._body()))
        except BadRequest as exc:
            self._error(400, str(exc), "invalid_request_error")
        except Exception as exc:  # a failed generation is the client's error report, not a dead server
            log.exception("generation failed")
            self._error(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def _completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise BadRequest("'prompt' must be a string or a non-empty list of strings")
        texts, sampling = self._generate(prompts, body)
        choices = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": self._finish(text, sampling)}
            for i, text in enumerate(texts)
        ]
        return self._answer("text_completion", "cmpl", choices, prompts, texts)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list of {'role': ..., 'content': ...} objects")
        try:
            prompt = chat_prompt(self.backend.tokenizer, messages)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        texts, sampling = self._generate([prompt], body)
        message = {"role": "assistant", "content": texts[0]}
        choices = [{"index": 0, "message": message, "finish_reason": self._finish(texts[0], sampling)}]
        return self._answer("chat.completion", "chatcmpl", choices, [prompt], texts)

    def _generate(self, prompts: list[str], body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        sampling = _sampling(body)
        return self.backend.generate(prompts, **sampling), sampling

    def _finish(self, text: str, sampling: dict[str, Any]) -> str:
        used = len(self.backend.tokenizer(text)["input_ids"])
        return "length" if used >= sampling["max_new_tokens"] else "stop"

    def _answer(
        self, kind: str, prefix: str, choices: list[dict], prompts: list[str], texts: list[str]
    ) -> dict[str, Any]:
        count = lambda items: sum(len(self.backend.tokenizer(t)["input_ids"]) for t in items)  # noqa: E731
        prompt_tokens, completion_tokens = count(prompts), count(texts)
        return {
            "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``TransformersBackend.generate`` from an OpenAI request body.

    Raises:
        BadRequest: For a value of the wrong type or out of range, or ``n != 1``.
    """
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported; send the prompt several times (or as a list) instead")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 16))
    temperature = body.get("temperature", 1.0)
    top_p = body.get("top_p", 1.0)
    seed = body.get("seed")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest(f"'max_tokens' must be a positive integer, got {max_tokens!r}")
    for name, value in (("temperature", temperature), ("top_p", top_p)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadRequest(f"'{name}' must be a number, got {value!r}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise BadRequest(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature!r} and {top_p!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise BadRequest(f"'seed' must be an integer, got {seed!r}")
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise BadRequest(f"'stop' must be a string or a list of strings, got {stop!r}")
    return {
        "max_new_tokens": max_tokens,
        "temperature": float(temperature),
        "top_p": float(top_p),
        "stop": stop,
        "seed": seed,
    }


def serve(model: str | Path, *, host: str = "127.0.0.1", port: int = 8765, device: str | None = None) -> None:
    """Serve ``model`` until interrupted (``python -m evolution serve-model``).

    Raises:
        FileNotFoundError: If ``model`` is not a model folder.
        OSError: If the address is in use or not available.
    """
    server = make_server(model, host=host, port=port, device=device)
    bound_host, bound_port = server.server_address[:2]
    log.info("serving %s at http://%s:%d/v1 (OpenAI API: /v1/models, /v1/completions, /v1/chat/completions)",
             model, bound_host, bound_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
