"""The shared HTTP retry helper: the one Retry-After parser, the policy's waits and caps, the retry loop."""

from __future__ import annotations

import email.utils
import time

import pytest

from baselines.http import (
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    call_with_retries,
    new_session,
    parse_retry_after,
)


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120.0 and parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("0.5") == 0.5 and parse_retry_after("0") == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(
        30, abs=1
    )
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now) == pytest.approx(
        10, abs=1
    )
    assert parse_retry_after(email.utils.formatdate(now - 100, usegmt=True), now=now) == 0.0  # past: now
    for bad in (None, "", "soon", "-5", "nan", "inf", "Wed, 99 Foo 2015"):
        assert parse_retry_after(bad) is None, bad


def test_policy_backoff_doubles_up_to_its_cap_and_retry_after_is_capped() -> None:
    p = RetryPolicy(retries=5, backoff_s=1.0, backoff_max_s=4.0, retry_after_max_s=10.0)
    assert [p.wait_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert p.wait_s(0, retry_after=7.0) == 7.0 and p.wait_s(0, retry_after=86400.0) == 10.0
    assert p.wait_s(3, retry_after=0.0) == 0.0  # the server said now: no backoff on top
    assert p.max_total_wait_s == 50.0


def test_policy_equal_jitter_and_minimum_wait() -> None:
    p = RetryPolicy(backoff_s=1.0, backoff_max_s=60.0, jitter=True)
    waits = [p.wait_s(2) for _ in range(200)]
    assert all(2.0 <= w <= 4.0 for w in waits) and len(set(waits)) > 100
    polite = RetryPolicy(backoff_s=1.0, min_wait_s=3.0, retry_after_max_s=300.0)
    assert polite.wait_s(0) == 3.0 and polite.wait_s(0, retry_after=0.0) == 3.0
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


def test_call_with_retries_retries_then_succeeds_with_the_waits_it_was_told() -> None:
    answers: list[object] = [Retryable("HTTP 503", 7.0), Retryable("HTTP 500"), "ok"]
    sleeps: list[float] = []
    seen: list[tuple[int, str, float]] = []

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = call_with_retries(
        attempt,
        RetryPolicy(retries=3, backoff_s=0.5),
        sleep=sleeps.append,
        on_retry=lambda n, failure, wait: seen.append((n, str(failure), wait)),
    )
    assert result == ("ok", 3)
    assert sleeps == [7.0, 1.0]  # Retry-After, then the second backoff (0.5 * 2)
    assert seen == [(0, "HTTP 503", 7.0), (1, "HTTP 500", 1.0)]


def test_call_with_retries_gives_up_and_passes_other_errors_through() -> None:
    sleeps: list[float] = []

    def always() -> None:
        raise Retryable("HTTP 502", payload={"status": 502})

    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(always, RetryPolicy(retries=2, backoff_s=0.1), sleep=sleeps.append)
    assert info.value.attempts == 3 and info.value.last.payload == {"status": 502}
    assert "HTTP 502; gave up after 3 attempt(s)" in str(info.value) and sleeps == [0.1, 0.2]

    calls = []

    def fatal() -> None:
        calls.append(1)
        raise KeyError("not retryable")

    with pytest.raises(KeyError):
        call_with_retries(fatal, RetryPolicy(retries=5), sleep=sleeps.append)
    assert len(calls) == 1


def test_new_session_sets_the_user_agent_and_pool() -> None:
    s = new_session("atlas-test/1", pool_size=3)
    assert s.headers["User-Agent"] == "atlas-test/1"
    adapter = s.get_adapter("https://example.org")
    assert adapter._pool_maxsize == 3 and adapter.max_retries.total == 0


def test_a_deadline_bounds_the_whole_call_on_an_injected_clock() -> None:
    from baselines.http import Deadline

    clock = {"t": 0.0}
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock["t"] += s

    def attempt() -> None:
        clock["t"] += 3.0  # each try takes 3 s (a read timeout)
        raise Retryable("timeout after 3s")

    policy = RetryPolicy(retries=100, backoff_s=1.0, backoff_max_s=8.0)
    with pytest.raises(RetriesExhausted, match="deadline") as e:
        call_with_retries(attempt, policy, sleep=sleep, deadline=Deadline(20.0, clock=lambda: clock["t"]))
    assert clock["t"] <= 20.0 and e.value.attempts == 4 and waits == [1.0, 2.0, 4.0]


def test_the_circuit_breaker_opens_after_consecutive_failures_only() -> None:
    from baselines.http import CircuitBreaker

    b = CircuitBreaker(3)
    assert not b.failure("x") and not b.failure("x")
    b.success()  # a success in between: the count starts again
    assert not b.failure("a") and not b.failure("b") and b.failure("c") and b.open and b.reason == "c"
    never = CircuitBreaker(0)
    assert not any(never.failure("x") for _ in range(100))
    never.trip("HTTP 401")
    assert never.open and never.reason == "HTTP 401"


def test_redact_url_strips_credentials() -> None:
    from baselines.http import redact_url, redact_urls

    assert redact_url("http://user:pw@host:8000/v1") == "http://***@host:8000/v1"
    assert redact_url("https://h/v1?api_key=s3cret&x=1") == "https://h/v1?api_key=***&x=1"
    assert redact_url("https://h/v1?token=abc") == "https://h/v1?token=***"
    assert redact_url("https://h/v1") == "https://h/v1" and redact_url("not a url") == "not a url"
    text = "mllm-safety run x --base-url 'http://u:p@10.0.0.1/v1' --limit 2"
    assert redact_urls({"a": [text]}) == {"a": [text.replace("u:p@", "***@")]}
