"""The ``openai`` back-end: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, ...).

``openai:<model>`` with ``--base-url``. Images go as base64 PNG data URLs; requests run on a bounded set of
daemon threads; 429 / 5xx / timeouts / connection errors / malformed JSON are retried with exponential backoff
and jitter, honouring ``Retry-After`` (seconds or an HTTP date), by the shared helper ``baselines.http``.

Waits are bounded three ways: each wait is capped (``backoff_max_s``, ``max_retry_after_s``); each request has
a total ``deadline_s`` (tries and waits together; a try's read timeout is cut to what is left); and a circuit
breaker stops the run with a clear message (:class:`EndpointDown`, a BackendError) after ``breaker_after``
consecutive failed requests, or at once on 401/403/404 (a wrong key or URL fails every request alike).
Ctrl-C returns at once: waits are interruptible, requests in flight are abandoned (daemon threads).

The API key is read from the environment variable named by ``api_key_env`` and never logged, returned by
``info()`` or put into an error message; credentials in the base URL (``user:password@``, ``?api_key=``) are
stripped from everything recorded (:func:`baselines.http.redact_url`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from baselines.base import BackendError, Model
from baselines.http import (
    RETRY_STATUSES,
    CircuitBreaker,
    Deadline,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    call_with_retries,
    new_session,
    parse_retry_after,
    redact_url,
)
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

log = logging.getLogger(__name__)
RETRY_STATUS = RETRY_STATUSES | {409, 425}  # and every other 5xx
FATAL_STATUS = frozenset({401, 403, 404})  # every request would fail alike: stop the run at once


class EndpointDown(BackendError):
    """The circuit breaker opened: the endpoint failed too many requests in a row (or refused the key / URL)."""


class Stopped(Exception):
    """A request abandoned because the run is stopping (Ctrl-C, or the breaker opened)."""


class OpenAIParams(StrictParams):
    """Parameters of the openai back-end."""

    model: str = Field(description="model name the endpoint serves")
    base_url: str = Field("https://api.openai.com/v1", description="endpoint base URL (ends in /v1)")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight at most")
    timeout_s: float = Field(60.0, gt=0, description="read timeout of one try")
    connect_timeout_s: float = Field(5.0, gt=0, description="connect timeout (also of the start-up check)")
    deadline_s: float = Field(
        180.0, gt=0, description="most time one request may take in all, tries and waits together"
    )
    breaker_after: int = Field(
        5,
        ge=0,
        description="consecutive failed requests that stop the run (circuit breaker; 0: never); "
        "401/403/404 stop it at once",
    )
    max_retries: int = Field(4, ge=0, description="retries of a request after the first try")
    backoff_base_s: float = Field(
        1.0,
        ge=0,
        description="first backoff; doubles per retry (capped at backoff_max_s); each wait is drawn "
        "uniformly from [backoff/2, backoff] (equal jitter)",
    )
    backoff_max_s: float = Field(30.0, ge=0, description="longest backoff between two tries")
    max_retry_after_s: float = Field(60.0, ge=0, description="cap on the wait a server's Retry-After asks")
    max_tokens_field: str = Field("max_tokens", description="max_tokens | max_completion_tokens")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields of every request")
    check_connection: bool = Field(True, description="fail fast at start-up if the endpoint is unreachable")


def data_url(image: Any) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URL (RGB), encoded once per distinct image content
    (:mod:`baselines.imagecache`)."""
    from baselines.imagecache import data_url as cached_data_url

    return cached_data_url(image)


def build_messages(sample: Sample) -> list[dict[str, Any]]:
    """Chat-completions messages: an optional system message, then the user turn (images, then text).

    A conversation given in ``sample.meta["messages"]`` (as the hf back-end takes it, e.g. from the
    ``llamaguard`` judge) is sent as is, each ``{"type": "image"}`` part taking the next image as a data URL.
    """
    if sample.meta.get("messages") is not None:
        return _given_messages(sample)
    msgs: list[dict[str, Any]] = []
    if sample.system:
        msgs.append({"role": "system", "content": sample.system})
    if sample.images:
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": data_url(im)}} for im in sample.images
        ]
        parts.append({"type": "text", "text": sample.text})
        msgs.append({"role": "user", "content": parts})
    else:
        msgs.append({"role": "user", "content": sample.text})
    return msgs


def _given_messages(sample: Sample) -> list[dict[str, Any]]:
    images = iter(sample.images)
    out: list[dict[str, Any]] = []
    for msg in sample.meta["messages"]:
        content = msg.get("content")
        if isinstance(content, (list, tuple)):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    try:
                        im = next(images)
                    except StopIteration:
                        raise ValueError(
                            "meta['messages'] has more image parts than the sample has images"
                        ) from None
                    parts.append({"type": "image_url", "image_url": {"url": data_url(im)}})
                else:
                    parts.append(dict(part))
            content = parts
        out.append({**msg, "content": content})
    if next(images, None) is not None:
        raise ValueError("the sample has more images than meta['messages'] has image parts")
    return out


#: Hosted APIs that refuse every request without a key: a run against them with no key fails at start-up,
#: before it sends anything.
KEYED_HOSTS = frozenset({"api.openai.com", "openrouter.ai", "api.together.xyz", "api.deepseek.com",
                         "api.groq.com", "api.mistral.ai", "api.fireworks.ai"})  # fmt: skip


@register("model")
class OpenAIModel(Model):
    """A model behind an OpenAI-compatible chat-completions endpoint."""

    summary = "any OpenAI-compatible chat-completions endpoint (openai:<model> --base-url URL)"
    Params = OpenAIParams

    deviations: ClassVar[list[dict[str, str]]] = []  # none: a back-end (the endpoint's own chat template)

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.base_url = self.params.base_url.rstrip("/")
        self.public_url = redact_url(self.base_url)  # what logs, errors and provenance show
        self._local = threading.local()
        self._served_model: str | None = None
        self.breaker = CircuitBreaker(self.params.breaker_after)
        self.sleep: Callable[[float], None] | None = None  # tests: injected waits
        url = urlparse(self.base_url)
        if url.scheme not in ("http", "https"):
            raise BackendError(f"base URL {self.public_url!r} must start with http:// or https://")
        if url.hostname in KEYED_HOSTS and not self._key:
            # before any traffic: a hosted API answers 401 to every request without a key
            raise BackendError(
                f"{self.public_url} needs an API key: set ${self.params.api_key_env} (the variable the "
                "api_key_env setting names); for a local server give its base URL"
            )
        if self.params.check_connection:
            self._check_reachable()

    # -- set-up ----------------------------------------------------------------------------------------------
    @property
    def _key(self) -> str | None:
        return os.environ.get(self.params.api_key_env) or None

    def _redact(self, text: str) -> str:
        key = self._key
        text = text.replace(self.base_url, self.public_url)
        return text.replace(key, "***") if key else text

    def _check_reachable(self) -> None:
        u = urlparse(self.base_url)
        port = u.port or (443 if u.scheme == "https" else 80)
        try:
            socket.create_connection((u.hostname, port), timeout=self.params.connect_timeout_s).close()
        except OSError as e:
            raise BackendError(
                f"cannot reach the endpoint {self.public_url} ({type(e).__name__}: {e}); check --base-url and "
                "that the server is running"
            ) from None

    def _session(self) -> Any:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = new_session()
        return s

    def info(self) -> dict[str, Any]:
        """Provenance: model name, the name the server reported, base URL, key variable (never the key)."""
        return {
            "backend": self.name,
            "id": self.params.model,
            "revision": self._served_model or "unknown",
            "base_url": self.public_url,
            "api_key_env": self.params.api_key_env,
            "labels": [],
        }

    # -- requests --------------------------------------------------------------------------------------------
    def _body(self, sample: Sample, config: GenerationConfig) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.params.model,
            "messages": build_messages(sample),
            self.params.max_tokens_field: config.max_new_tokens,
            "temperature": max(0.0, config.temperature),
            "seed": config.seed,
        }
        if config.top_p < 1.0:
            body["top_p"] = config.top_p
        if sample.meta.get("chat_template_kwargs"):  # vLLM / SGLang pass these to the served chat template
            body["chat_template_kwargs"] = dict(sample.meta["chat_template_kwargs"])
        body.update(self.params.extra_body)
        return body

    def _try(self, body: dict[str, Any], deadline: Deadline, stop: threading.Event) -> dict[str, Any]:
        import requests

        if stop.is_set() or self.breaker.open:
            raise Stopped("the run is stopping")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        url = f"{self.base_url}/chat/completions"
        read_timeout = min(self.params.timeout_s, max(deadline.remaining(), 0.05))
        try:
            r = self._session().post(
                url,
                json=body,
                headers=headers,
                timeout=(min(self.params.connect_timeout_s, read_timeout), read_timeout),
            )
        except requests.Timeout:
            raise Retryable(f"timeout after {read_timeout:g}s") from None
        except requests.ConnectionError as e:
            raise Retryable(f"connection error: {type(e).__name__}") from None
        if r.status_code in RETRY_STATUS or r.status_code >= 500:
            raise Retryable(f"HTTP {r.status_code}", parse_retry_after(r.headers.get("Retry-After")))
        if r.status_code >= 400:
            message = (
                f"HTTP {r.status_code} from {self.public_url}/chat/completions: {self._redact(r.text[:300])}"
            )
            if r.status_code in FATAL_STATUS:
                hint = (
                    f"check the API key in ${self.params.api_key_env}"
                    if r.status_code in (401, 403)
                    else "check --base-url (it ends in /v1) and the model name"
                )
                self.breaker.trip(f"{message} ({hint})")
            raise BackendError(message)
        try:
            data = r.json()
            msg = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise Retryable("malformed JSON in the response") from None
        return data | {"_message": msg}

    @property
    def retry_policy(self) -> RetryPolicy:
        """The waits between tries: equal-jitter exponential backoff, or the server's capped Retry-After."""
        p = self.params
        return RetryPolicy(
            retries=p.max_retries,
            backoff_s=p.backoff_base_s,
            backoff_max_s=p.backoff_max_s,
            retry_after_max_s=p.max_retry_after_s,
            jitter=True,
        )

    def _one(self, sample: Sample, config: GenerationConfig, stop: threading.Event) -> Response:
        t0 = time.perf_counter()
        try:
            body = self._body(sample, config)
        except Exception as e:  # noqa: BLE001 - e.g. an unencodable image
            return Response(sample_id=sample.id, text="", error=f"request: {type(e).__name__}: {e}"[:500])

        def log_retry(n: int, failure: Retryable, wait: float) -> None:
            log.warning(
                "%s: %s for sample %s; retry %d/%d in %.2fs",
                self.public_url, failure, sample.id, n + 1, self.params.max_retries, wait,
            )  # fmt: skip

        def wait(seconds: float) -> None:
            if self.sleep is not None:
                return self.sleep(seconds)
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:  # wakes at once when the run stops (Ctrl-C, breaker)
                if stop.wait(min(left, 0.1)) or self.breaker.open:
                    raise Stopped("the run is stopping")
            return None

        deadline = Deadline(self.params.deadline_s)
        try:
            data, attempts = call_with_retries(
                lambda: self._try(body, deadline, stop),
                self.retry_policy,
                sleep=wait,
                on_retry=log_retry,
                deadline=deadline,
            )
        except Stopped:
            return Response(sample_id=sample.id, text="", error="not answered: the run was stopped")
        except BackendError as e:
            self.breaker.failure(str(e))
            return Response(sample_id=sample.id, text="", latency_s=time.perf_counter() - t0, error=str(e))
        except RetriesExhausted as e:
            error = self._redact(f"{self.public_url}: {e.last} (gave up after {e.attempts} tries{e.why})")
            self.breaker.failure(error)
            return Response(sample_id=sample.id, text="", latency_s=time.perf_counter() - t0, error=error)
        self.breaker.success()
        self._served_model = self._served_model or data.get("model")
        usage = data.get("usage") or {}
        return Response(
            sample_id=sample.id,
            text=(data["_message"].get("content") or "").strip(),
            latency_s=time.perf_counter() - t0,
            n_output_tokens=usage.get("completion_tokens"),
            meta={"finish_reason": data["choices"][0].get("finish_reason"), "attempts": attempts},
        )

    #: The harness sends this back-end's requests one by one through one window of ``concurrency`` requests for
    #: a whole condition (:mod:`baselines.requestpool`), instead of one ``generate`` call per chunk.
    per_request = True

    def answer(
        self, sample: Sample, config: GenerationConfig, stop: threading.Event | None = None
    ) -> Response:
        """One request (retries, deadline, breaker), for a caller that keeps its own requests in flight;
        ``stop`` set abandons it (its Response then says the run was stopped)."""
        return self._one(sample, config, stop or threading.Event())

    def endpoint_down(self) -> bool:
        """Whether the circuit breaker is open (every further request would be refused)."""
        return self.breaker.open

    def check_endpoint(self) -> None:
        """Raise :class:`EndpointDown` (saying why) once the circuit breaker is open."""
        self._stop_if_down()

    def _stop_if_down(self) -> None:
        if self.breaker.open:
            raise EndpointDown(
                f"stopped: the endpoint {self.public_url} failed {self.breaker.consecutive or 1} request(s) in "
                f"a row (circuit breaker, --set model.breaker_after={self.params.breaker_after}); last error: "
                f"{self._redact(self.breaker.reason or '?')}"
            )

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One Response per sample, in order; at most ``concurrency`` requests in flight. Raises
        :class:`EndpointDown` once the circuit breaker is open (the answers of this call are then dropped; the
        harness keeps the records written before)."""
        self._stop_if_down()
        if not samples:
            return []
        stop = threading.Event()
        out = run_concurrently(
            lambda s: self._one(s, config, stop), list(samples), self.params.concurrency, stop, self.breaker
        )
        self._stop_if_down()
        return [
            r
            if r is not None
            else Response(sample_id=s.id, text="", error="not answered: the run was stopped")
            for s, r in zip(samples, out, strict=True)
        ]


def run_concurrently(
    fn: Callable[[Any], Any], items: list[Any], workers: int, stop: threading.Event, breaker: CircuitBreaker
) -> list[Any]:
    """``[fn(x) for x in items]`` on at most ``workers`` daemon threads (None for items not run because
    ``stop`` was set or ``breaker`` opened). A Ctrl-C in the calling thread sets ``stop`` and returns at once:
    daemon threads never hold the process, whatever request they are blocked in."""
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    queue = iter(enumerate(items))
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set() and not breaker.open:
            with lock:
                nxt = next(queue, None)
            if nxt is None:
                return
            try:
                results[nxt[0]] = fn(nxt[1])
            except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(e)
                stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.05)
    except BaseException:
        stop.set()
        raise
    if errors:
        raise errors[0]
    return results
