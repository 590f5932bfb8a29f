"""``OpenAIBackend`` against the real ``serve-model`` server process (and small stand-ins)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from evolution.mutation import BackendError, DiffMutation, OpenAIBackend, RewriteMutation, TransformersBackend
from evolution.mutation._prompts import diff_prompt
from evolution.sodarace import seeds

SQUARE = seeds.get_seed("square").text
GREEDY = dict(temperature=0.0, top_p=1.0, seed=None)
PROMPTS = ["def make_walker():", diff_prompt(SQUARE, "Small change to make_walker function.")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model):
    """``python -m evolution serve-model`` on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "evolution", "serve-model", "--model", str(tiny_model), "--port", str(port), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as response:
                models = json.load(response)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the model server did not start: {process.communicate()[0]}")
            time.sleep(0.2)
    assert models["data"][0]["id"] == tiny_model.name
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def local(tiny_model) -> TransformersBackend:
    return TransformersBackend(tiny_model, device="cpu")


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_completions_through_the_server_equal_the_local_models(server, local):
    remote = OpenAIBackend(server, model="tiny").generate(PROMPTS, max_new_tokens=12, stop=[], **GREEDY)
    assert remote == local.generate(PROMPTS, max_new_tokens=12, stop=[], **GREEDY)
    batched = OpenAIBackend(server + "/v1/", batch_prompts=True).generate(PROMPTS, max_new_tokens=12, stop=[], **GREEDY)
    assert batched == remote


def test_the_server_applies_stop_strings(server, local):
    (full,) = local.generate(PROMPTS[:1], max_new_tokens=12, stop=[], **GREEDY)
    marker = full[2:5]
    (cut,) = OpenAIBackend(server).generate(PROMPTS[:1], max_new_tokens=12, stop=[marker], **GREEDY)
    assert cut == full[: full.index(marker)]


def test_chat_through_the_server_equals_the_local_models_chat(server, local):
    conversation = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A walker?"}]]
    remote = OpenAIBackend(server, mode="chat").chat(conversation, max_new_tokens=8, stop=[], **GREEDY)
    assert remote == local.chat(conversation, max_new_tokens=8, stop=[], **GREEDY)


def test_both_operators_work_through_the_server(server):
    backend = OpenAIBackend(server)
    for operator in (DiffMutation(backend, max_new_tokens=16), RewriteMutation(backend, max_new_tokens=16)):
        children = operator.mutate([SQUARE] * 3, rng=np.random.default_rng(0))
        assert len(children) == 3 and all(c.failure != "generation_error" for c in children)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"prompt": "x", "n": 2}', "only n=1"),
        (b'{"prompt": 5}', "'prompt' must be a string"),
        (b'{"prompt": "x", "temperature": -1}', "temperature >= 0"),
        (b"{not json", "not JSON"),
        (b'{"messages": "hi"}', "'messages' must be"),
    ],
)
def test_a_bad_request_is_a_400_with_a_json_message(server, body, message):
    path = "/v1/chat/completions" if b"messages" in body else "/v1/completions"
    status, answer = post(server + path, body)
    assert status == 400 and message in answer["error"]["message"]


def test_an_unknown_endpoint_is_a_404(server):
    status, answer = post(server + "/v1/embeddings", b"{}")
    assert status == 404 and "/v1/completions" in answer["error"]["message"]


def test_the_backend_reports_a_400_at_once_with_the_servers_message(server):
    backend = OpenAIBackend(server, retries=3, backoff_s=5.0)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"HTTP 400 from .*/v1/chat/completions: each message must be"):
        backend.chat([[{"role": "user", "content": 5}]], max_new_tokens=2, stop=[], **GREEDY)
    assert time.monotonic() - started < 3  # no retries for a bad request


def test_a_server_that_is_down_gives_generation_error_children_that_say_what_to_do():
    url = f"http://127.0.0.1:{free_port()}"
    operator = DiffMutation(OpenAIBackend(url, retries=1, backoff_s=0.01))
    children = operator.mutate([SQUARE] * 4, rng=np.random.default_rng(0))
    assert [c.failure for c in children] == ["generation_error"] * 4
    assert url in children[0].failure_message and "serve-model" in children[0].failure_message


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        backend = OpenAIBackend(url, timeout_s=0.3, retries=0)
        with pytest.raises(BackendError, match=r"no answer from .* within 0.3 s"):
            backend.generate(["x"], max_new_tokens=2, stop=[], **GREEDY)


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first request, then a completion; records the headers it saw."""

    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Flaky.seen.append({"auth": self.headers.get("Authorization"), "body": body})
        status, answer = (503, {"error": {"message": "busy"}}) if len(Flaky.seen) == 1 else (200, {"choices": [{"index": 0, "text": "ok<NME>x"}]})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_busy_server_is_retried_and_the_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    Flaky.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        backend = OpenAIBackend("http://127.0.0.1:%d" % httpd.server_address[1], model="m", backoff_s=0.01)
        out = backend.generate(["p"], max_new_tokens=3, temperature=0.5, top_p=0.9, stop=["<NME>"], seed=11)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert out == ["ok"] and len(Flaky.seen) == 2
    assert Flaky.seen[1]["auth"] == "Bearer sk-test" and "sk-test" not in repr(backend)
    assert Flaky.seen[1]["body"] == {
        "max_tokens": 3, "temperature": 0.5, "top_p": 0.9, "n": 1, "model": "m", "stop": ["<NME>"], "prompt": "p", "seed": 11,
    }


def test_a_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        OpenAIBackend("localhost:8000")
    assert OpenAIBackend("http://example.test:1/v1/").url == "http://example.test:1"
