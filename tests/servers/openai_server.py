"""A real local OpenAI-compatible chat-completions server for tests (http.server in a thread, port 0).

Usage::

    with FakeOpenAIServer(api_key="sk-test") as srv:       # srv.url == "http://127.0.0.1:<port>/v1"
        srv.reply = lambda body: "Sure."                     # optional: answer text from the request body
        srv.push("429", retry_after="1")                     # scripted faults, consumed one per request
        srv.push("500"); srv.push("slow", delay_s=2.0); srv.push("malformed")
        ... call the client ...
        srv.requests[0].body["messages"]                     # every request, recorded
        srv.max_in_flight                                     # most concurrent requests seen

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``. With ``api_key`` set, a request whose
``Authorization`` is not ``Bearer <api_key>`` gets 401. Recorded headers never contain the key: the
Authorization value is replaced by ``"<redacted>"`` (``RecordedRequest.authorized`` says whether it matched).
The default reply is ``"echo: <last user text> [images: <n>]"``. ``delay_s`` slows every answer;
``always(fault)`` answers every request without a queued fault that way (an endpoint down or hanging).
Runnable as a process for subprocess tests: ``python tests/servers/openai_server.py [fault [delay_s]]``
prints its URL on the first line and serves until killed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("ok", "404", "429", "500", "503", "slow", "malformed", "close")


@dataclass
class RecordedRequest:
    """One request as the server received it (Authorization value redacted)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it was not JSON
    authorized: bool | None  # None when the server has no api_key
    time: float = field(default_factory=time.monotonic)
    answered_with: str = "ok"


def _user_text_and_images(body: dict[str, Any]) -> tuple[str, int]:
    text, n_images = "", 0
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            text = content
            continue
        for part in content or []:
            if part.get("type") == "text":
                text = part.get("text", "")
            elif part.get("type") == "image_url":
                n_images += 1
    return text, n_images


def default_reply(body: dict[str, Any]) -> str:
    """``"echo: <last user text> [images: <n>]"``."""
    text, n = _user_text_and_images(body)
    return f"echo: {text} [images: {n}]"


class FakeOpenAIServer:
    """The server; a context manager that starts it on enter and stops it on exit."""

    def __init__(
        self, *, api_key: str | None = None, delay_s: float = 0.0, model: str = "fake-model"
    ) -> None:
        self.api_key = api_key
        self.delay_s = delay_s
        self.model = model
        self.reply: Callable[[dict[str, Any]], str] = default_reply
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[tuple[str, dict[str, Any]]] = deque()
        self._default: tuple[str, dict[str, Any]] = ("ok", {})
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------------------------------------
    def push(self, fault: str, **kw: Any) -> None:
        """Queue a fault for the next request: ``"429"`` (``retry_after``: header value, optional), ``"500"``,
        ``"503"``, ``"404"`` (model not found), ``"slow"`` (``delay_s`` before a normal answer), ``"malformed"`` (200 with broken JSON),
        ``"close"`` (drop the connection), or ``"ok"``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append((fault, kw))

    def always(self, fault: str, **kw: Any) -> None:
        """Answer every request without a queued fault with ``fault`` (e.g. ``always("503")`` for an endpoint
        that is down, ``always("slow", delay_s=60)`` for one that accepts and never answers)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._default = (fault, kw)

    def _next_fault(self) -> tuple[str, dict[str, Any]]:
        with self._lock:
            return self._faults.popleft() if self._faults else self._default

    @property
    def url(self) -> str:
        """Base URL to give the client (ends in ``/v1``)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completions requests."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind to 127.0.0.1 on a free port and serve in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                server._record(self, None)
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                rec = server._record(self, body)
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    self._answer(rec, body)
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _answer(self, rec: RecordedRequest, body: Any) -> None:
                if rec.authorized is False:
                    rec.answered_with = "401"
                    return self._send(
                        401, {"error": {"message": "bad api key", "type": "invalid_request_error"}}
                    )
                if not self.path.rstrip("/").endswith("/chat/completions") or not isinstance(body, dict):
                    rec.answered_with = "404"
                    return self._send(404, {"error": {"message": "unknown endpoint or body"}})
                fault, kw = server._next_fault()
                rec.answered_with = fault
                time.sleep(server.delay_s + (kw.get("delay_s", 0.0) if fault == "slow" else 0.0))
                if fault == "429":
                    extra = {"Retry-After": str(kw["retry_after"])} if "retry_after" in kw else {}
                    return self._send(429, {"error": {"message": "rate limited"}}, extra)
                if fault in ("500", "503"):
                    return self._send(int(fault), {"error": {"message": "server error"}})
                if fault == "404":  # what an OpenAI-compatible server answers for a model it does not serve
                    return self._send(
                        404, {"error": {"message": "model not found", "code": "model_not_found"}}
                    )
                if fault == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if fault == "malformed":
                    return self._send_raw(200, b'{"id": "x", "choices": [{"message": ')
                text = server.reply(body)
                return self._send(200, _completion(body, text, server.model))

            def _send(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(code, json.dumps(obj).encode(), headers)

            def _send_raw(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> RecordedRequest:
        headers = {k: v for k, v in handler.headers.items()}
        auth = handler.headers.get("Authorization")
        authorized = None if self.api_key is None else auth == f"Bearer {self.api_key}"
        for k in list(headers):
            if k.lower() == "authorization":
                headers[k] = "<redacted>"
        rec = RecordedRequest(handler.command, handler.path, headers, body, authorized)
        with self._lock:
            self.requests.append(rec)
        return rec


def _completion(body: dict[str, Any], text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": len(text.split()),
            "total_tokens": 1 + len(text.split()),
        },
    }


if __name__ == "__main__":  # pragma: no cover - used by subprocess tests
    import sys

    srv = FakeOpenAIServer().start()
    if len(sys.argv) > 1:
        srv.always(sys.argv[1], delay_s=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    print(srv.url, flush=True)
    threading.Event().wait()
