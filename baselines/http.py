"""One HTTP retry helper for every client of the project (the openai back-end, the arXiv client, the link checker).

* :func:`parse_retry_after` is the only parser of a ``Retry-After`` header (delay-seconds or an HTTP date).
* :class:`RetryPolicy` says how long to wait before retry number *n*: the server's ``Retry-After`` when it
  sent one (capped at ``retry_after_max_s``), else ``backoff_s * 2**n`` (capped at ``backoff_max_s``),
  optionally with *equal jitter* (drawn uniformly from [wait/2, wait]), and never less than ``min_wait_s``.
  Every wait is therefore bounded, and so is the total: at most ``retries * max(backoff_max_s,
  retry_after_max_s)`` seconds of waiting per call (:attr:`RetryPolicy.max_total_wait_s`).
* :func:`call_with_retries` runs one attempt function until it succeeds, raises something other than
  :class:`Retryable`, or the retries are spent (:class:`RetriesExhausted`). ``sleep`` is injectable, so
  tests see the waits without waiting.
* :func:`new_session` is a ``requests.Session`` with a connection pool sized for a thread pool and a
  User-Agent; retries are done by :func:`call_with_retries`, not by the transport, because the clients
  also retry answers that only they can judge (a malformed JSON body, an arXiv error page) within one budget.

* :class:`Deadline` bounds one call in total (attempts and waits together): :func:`call_with_retries` gives up
  rather than start a wait that would end past it, and a client sizes each attempt's timeout to what is left.
* :class:`CircuitBreaker` counts consecutive failed calls across a client's threads; past its threshold the
  client stops calling an endpoint that is down instead of spending the whole retry budget on every request.
* :func:`redact_url` / :func:`redact_urls` strip credentials (``user:password@``, ``?api_key=...``) from a URL
  or from every URL in a text: nothing recorded (run.json, results, records, logs) carries them.

``requests`` is imported only when a session is made, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

T = TypeVar("T")

#: Answers worth retrying at every client: request timeout, too many requests, and the transient 5xx.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header; None when absent or unreadable.

    Accepts delay-seconds (``"120"``; a decimal such as ``"0.5"`` is tolerated) and an HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``; a date in the past means 0). ``now`` (epoch seconds) is for tests.
    Callers cap the value (:class:`RetryPolicy`): a server cannot make a client wait without bound.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a date without a zone is read as UTC
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait before each retry (see the module docstring)."""

    retries: int = 2
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 60.0
    jitter: bool = False
    min_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.retries < 0 or min(self.backoff_s, self.backoff_max_s, self.retry_after_max_s) < 0:
            raise ValueError("retries and waits must be >= 0")

    def wait_s(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            wait = min(retry_after, self.retry_after_max_s)
        else:
            wait = min(self.backoff_max_s, self.backoff_s * (2**retry))
            if self.jitter:
                wait = random.uniform(wait / 2, wait)
        return max(wait, min(self.min_wait_s, max(self.backoff_max_s, self.retry_after_max_s)))

    @property
    def max_total_wait_s(self) -> float:
        """The most time one call can spend waiting between its attempts."""
        per_wait = max(self.backoff_max_s, self.retry_after_max_s)
        return self.retries * per_wait


class Deadline:
    """A total time budget of ``seconds`` from now (None: unbounded), on an injectable monotonic ``clock``."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.start = clock()

    def remaining(self) -> float:
        """Seconds left (``inf`` when unbounded; never below 0)."""
        if self.seconds is None:
            return math.inf
        return max(0.0, self.seconds - (self.clock() - self.start))

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.start


class CircuitBreaker:
    """Counts consecutive failures (thread-safe); :attr:`open` once ``threshold`` of them happened in a row
    (or after :meth:`trip`), until a success. ``threshold`` 0 never opens on its own."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.reason: str | None = None
        self._tripped = False
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """Whether calls should stop."""
        return self._tripped

    def success(self) -> None:
        """A call succeeded: the count starts again (an explicit :meth:`trip` stays)."""
        with self._lock:
            self.consecutive = 0

    def failure(self, reason: str) -> bool:
        """A call failed; whether the breaker is open now."""
        with self._lock:
            self.consecutive += 1
            if not self._tripped:  # the reason that opened it stays
                self.reason = reason
            if self.threshold and self.consecutive >= self.threshold:
                self._tripped = True
            return self._tripped

    def trip(self, reason: str) -> None:
        """Open at once (a failure that every later call would repeat: bad key, unknown endpoint)."""
        with self._lock:
            self.reason, self._tripped = reason, True


_SECRET_PARAM = re.compile(r"(?:^|[_-])(?:key|token|secret|password|passwd|pwd|sig|signature|auth)$", re.I)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` without credentials: ``http://user:pw@host/v1?api_key=k&x=1`` -> ``http://***@host/v1?api_key=***&x=1``.
    Anything that is not a URL with a network location is returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_urls(value: Any) -> Any:
    """A copy of ``value`` (a string, or mappings/lists of them) with every URL in it redacted."""
    if isinstance(value, str):
        return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_urls(v) for v in value]
    return value


class Retryable(Exception):
    """A failed attempt that may succeed later.

    ``retry_after`` is the server's wish in seconds (already parsed), if it sent one; ``payload`` is what
    the caller wants back when the retries are spent (e.g. the last answer's status).
    """

    def __init__(self, message: str, retry_after: float | None = None, payload: Any = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.payload = payload


class RetriesExhausted(Exception):
    """Every attempt failed; ``last`` is the last attempt's :class:`Retryable`, ``attempts`` how many ran."""

    def __init__(self, last: Retryable, attempts: int, why: str = "") -> None:
        super().__init__(f"{last}; gave up after {attempts} attempt(s){why}")
        self.last = last
        self.attempts = attempts
        self.why = why


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, Retryable, float], None] | None = None,
    deadline: Deadline | None = None,
) -> tuple[T, int]:
    """Run ``attempt`` until it returns; ``(result, attempts used)``.

    ``attempt`` raises :class:`Retryable` for a failure worth another try; any other exception passes
    through at once. ``on_retry(retry number, failure, wait)`` is called before each wait (for logging).
    Raises :class:`RetriesExhausted` after ``policy.retries + 1`` failed attempts, or as soon as the next wait
    would end past ``deadline`` (or nothing of it is left).
    """
    for n in range(policy.retries + 1):
        try:
            return attempt(), n + 1
        except Retryable as failure:
            if n == policy.retries:
                raise RetriesExhausted(failure, n + 1) from None
            wait = policy.wait_s(n, failure.retry_after)
            if deadline is not None and deadline.remaining() <= wait:
                why = f" (within its {deadline.seconds:g} s deadline)"
                raise RetriesExhausted(failure, n + 1, why) from None
            if on_retry is not None:
                on_retry(n, failure, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def new_session(user_agent: str | None = None, pool_size: int = 10) -> Any:
    """A ``requests.Session`` whose connection pool holds ``pool_size`` connections per host."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    if user_agent:
        session.headers["User-Agent"] = user_agent
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
