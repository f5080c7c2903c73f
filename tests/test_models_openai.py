"""The openai back-end against a real local OpenAI-compatible server with injected faults."""

from __future__ import annotations

import base64
import io
import logging
import socket
import time
from email.utils import formatdate

import pytest
from PIL import Image
from servers.openai_server import FakeOpenAIServer

from baselines.base import BackendError
from baselines.models import load_model
from baselines.models.openai import EndpointDown
from baselines.types import GenerationConfig, Sample

KEY = "sk-test-SECRET-0123456789"
CFG = GenerationConfig(max_new_tokens=32)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY)
    with FakeOpenAIServer(api_key=KEY) as srv:
        yield srv


def _model(server, **params):
    values = {"api_key_env": "ATLAS_TEST_KEY", "backoff_base_s": 0.01, "timeout_s": 5.0, **params}
    return load_model("openai:fake-vlm", base_url=server.url, params=values)


def _recording(model):
    """The model with its waits recorded instead of slept (no test depends on the machine's speed)."""
    sleeps: list[float] = []
    model.sleep = sleeps.append
    return model, sleeps


def _image() -> Image.Image:
    im = Image.new("RGB", (17, 9), (10, 20, 30))
    im.putpixel((3, 4), (250, 0, 7))
    return im


def test_request_format_and_image_data_url(server) -> None:
    im = _image()
    samples = [
        Sample(id="a", text="What is shown?", images=(im,), system="Be brief."),
        Sample(id="b", text="Hi"),
    ]
    out = _model(server).generate(samples, CFG)
    assert [r.text for r in out] == ["echo: What is shown? [images: 1]", "echo: Hi [images: 0]"]
    assert all(r.error is None for r in out)
    by_text = {str(r.body["messages"][-1]["content"])[:40]: r.body for r in server.chat_requests}
    body = next(b for b in by_text.values() if b["messages"][0]["role"] == "system")
    assert body["model"] == "fake-vlm" and body["max_tokens"] == 32 and body["temperature"] == 0.0
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    parts = body["messages"][1]["content"]
    assert parts[-1] == {"type": "text", "text": "What is shown?"}
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == im.size and decoded.convert("RGB").tobytes() == im.tobytes()
    assert all(r.authorized for r in server.chat_requests)


def test_given_conversation_is_sent_with_images_and_template_kwargs(server) -> None:
    im = _image()
    convo = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this safe?"}]},
        {"role": "assistant", "content": "It is a picture."},
    ]
    meta = {"messages": convo, "chat_template_kwargs": {"excluded_category_keys": ["S6"]}}
    out = _model(server).generate([Sample(id="g", text="ignored", images=(im,), meta=meta)], CFG)
    assert out[0].error is None
    body = server.chat_requests[-1].body
    assert body["chat_template_kwargs"] == {"excluded_category_keys": ["S6"]}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    first = body["messages"][0]["content"]
    assert (
        first[1] == {"type": "text", "text": "Is this safe?"}
        and body["messages"][1]["content"] == "It is a picture."
    )
    decoded = Image.open(io.BytesIO(base64.b64decode(first[0]["image_url"]["url"].split(",", 1)[1])))
    assert decoded.convert("RGB").tobytes() == im.tobytes()
    # image parts and images must agree: the sample fails alone, with a clear error
    bad = Sample(id="h", text="x", meta={"messages": convo})
    assert "more image parts" in _model(server).generate([bad], CFG)[0].error


def test_retry_after_seconds_is_honoured(server) -> None:
    server.push("429", retry_after="1")
    m, sleeps = _recording(_model(server))
    out = m.generate([Sample(id="a", text="x")], CFG)
    assert out[0].error is None and out[0].meta["attempts"] == 2
    assert sleeps == [1.0] and len(server.chat_requests) == 2


def test_retry_after_http_date_is_honoured(server) -> None:
    server.push("429", retry_after=formatdate(time.time() + 30, usegmt=True))
    m, sleeps = _recording(_model(server))
    out = m.generate([Sample(id="a", text="x")], CFG)
    assert out[0].error is None and len(sleeps) == 1 and 20 < sleeps[0] <= 30


def test_retry_after_is_capped(server) -> None:
    server.push("429", retry_after="3600")
    m, sleeps = _recording(_model(server, max_retry_after_s=0.2))
    out = m.generate([Sample(id="a", text="x")], CFG)
    assert out[0].error is None and sleeps == [0.2]


@pytest.mark.parametrize("fault", ["500", "503", "malformed", "close"])
def test_transient_faults_are_retried(server, fault) -> None:
    server.push(fault)
    server.push(fault)
    out = _model(server).generate([Sample(id="a", text="x")], CFG)
    assert out[0].error is None and out[0].text == "echo: x [images: 0]" and out[0].meta["attempts"] == 3
    assert len(server.chat_requests) == 3


def test_exponential_backoff_grows(server) -> None:
    for _ in range(3):
        server.push("500")
    m, sleeps = _recording(_model(server, backoff_base_s=0.1))
    m.generate([Sample(id="a", text="x")], CFG)
    # equal jitter in [cap/2, cap] with cap 0.1, 0.2, 0.4
    assert (
        len(sleeps) == 3 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2 and 0.2 <= sleeps[2] <= 0.4
    )


def test_slow_answer_beyond_the_timeout_is_retried(server) -> None:
    server.push("slow", delay_s=1.5)
    out = _model(server, timeout_s=0.3).generate([Sample(id="a", text="x")], CFG)
    assert out[0].error is None and out[0].meta["attempts"] == 2


def test_persistent_failure_becomes_an_error_response(server) -> None:
    for _ in range(3):
        server.push("malformed")
    m = _model(server, max_retries=2, concurrency=1)
    out = m.generate([Sample(id="a", text="x"), Sample(id="b", text="y")], CFG)
    assert out[0].text == "" and "gave up after 3 tries" in out[0].error and server.url in out[0].error
    assert "malformed JSON" in out[0].error
    assert out[1].error is None and out[1].text == "echo: y [images: 0]"


def test_a_wrong_key_stops_the_run_at_the_first_answer(server, monkeypatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY + "-wrong")
    samples = [Sample(id=str(i), text="x") for i in range(6)]
    with pytest.raises(EndpointDown, match=r"HTTP 401.*check the API key in \$ATLAS_TEST_KEY"):
        _model(server, concurrency=1).generate(samples, CFG)
    assert len(server.chat_requests) == 1


def test_a_bad_request_fails_its_sample_only(server) -> None:
    bad = Sample(id="h", text="x", meta={"messages": [{"role": "user", "content": [{"type": "image"}]}]})
    out = _model(server).generate([bad, Sample(id="ok", text="y")], CFG)
    assert "more image parts" in out[0].error and out[1].error is None


def test_an_endpoint_that_never_answers_is_bounded_by_the_deadline(server) -> None:
    server.always("slow", delay_s=30)  # accepts every request and never answers in time
    m = _model(server, timeout_s=0.2, deadline_s=0.5, breaker_after=0, max_retries=50)
    out = m.generate([Sample(id="a", text="x")], CFG)
    assert "deadline" in out[0].error and "timeout" in out[0].error
    assert len(server.chat_requests) <= 4  # 50 retries allowed, the 0.5 s deadline stopped them


def test_default_waits_are_bounded() -> None:
    from baselines.models.openai import OpenAIParams

    p = OpenAIParams(model="m")
    assert p.deadline_s <= 300 and p.timeout_s <= p.deadline_s  # one request: at most 5 minutes in all
    assert 0 < p.breaker_after <= 10 and p.max_retry_after_s <= 60


def test_the_circuit_breaker_stops_a_run_against_a_down_endpoint(server) -> None:
    server.always("503")
    m, sleeps = _recording(_model(server, breaker_after=3, max_retries=1, concurrency=1))
    samples = [Sample(id=str(i), text="x") for i in range(20)]
    with pytest.raises(EndpointDown, match=r"failed 3 request\(s\) in a row.*HTTP 503"):
        m.generate(samples, CFG)
    assert len(server.chat_requests) == 3 * 2  # 3 requests of 2 tries, not 20
    with pytest.raises(EndpointDown):  # stays open: a later batch does not hammer the endpoint
        m.generate(samples[:1], CFG)
    assert len(server.chat_requests) == 6


def test_credentials_in_the_base_url_are_never_recorded() -> None:
    with FakeOpenAIServer() as srv:
        url = srv.url.replace("http://", "http://alice:hunter2@")
        m = load_model("openai:m", base_url=url, params={"api_key_env": "NO_SUCH_KEY_VAR", "timeout_s": 5.0})
        srv.always("503")
        m.sleep = lambda s: None
        out = m.generate([Sample(id="a", text="x")], GenerationConfig(max_new_tokens=4))
    text = repr(m.info()) + repr(out)
    assert out[0].error and "hunter2" not in text and "alice" not in text
    assert "***@127.0.0.1" in m.info()["base_url"] and "***@127.0.0.1" in out[0].error


def test_concurrency_is_bounded(monkeypatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY)
    with FakeOpenAIServer(api_key=KEY, delay_s=0.15) as srv:
        samples = [Sample(id=str(i), text=f"q{i}") for i in range(12)]
        t0 = time.monotonic()
        out = _model(srv, concurrency=3).generate(samples, CFG)
        elapsed = time.monotonic() - t0
    assert [r.text for r in out] == [f"echo: q{i} [images: 0]" for i in range(12)]  # order kept
    assert srv.max_in_flight == 3
    assert elapsed >= 4 * 0.15  # 12 requests, 3 at a time


def test_the_key_never_leaks(server, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    server.push("429", retry_after="0")
    server.push("500")
    m = _model(server, max_retries=1, concurrency=1)
    out = m.generate([Sample(id="a", text="x"), Sample(id="b", text="y")], CFG)
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY + "X")
    with pytest.raises(EndpointDown) as stopped:  # 401 with a wrong key: the run stops
        m.generate([Sample(id="c", text="z")], CFG)
    assert any(r.error for r in out) and caplog.records  # errors and retry logs happened
    assert KEY not in caplog.text and KEY not in str(stopped.value) and "HTTP 401" in str(stopped.value)
    assert KEY not in repr(m.info()) and KEY not in repr(out)
    assert all(KEY not in str(v) for r in server.requests for v in r.headers.values())


def test_unreachable_endpoint_fails_fast_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    t0 = time.monotonic()
    with pytest.raises(BackendError) as e:
        load_model("openai:m", base_url=url, params={"connect_timeout_s": 1.0})
    assert url in str(e.value) and time.monotonic() - t0 < 15  # refused at once (a generous bound)


def test_bad_base_url_scheme() -> None:
    with pytest.raises(BackendError, match="http"):
        load_model("openai:m", base_url="ftp://example.org/v1")


def test_a_hosted_api_without_a_key_fails_before_any_traffic(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def no_traffic(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was opened: {args}")

    monkeypatch.setattr(socket, "create_connection", no_traffic)
    monkeypatch.setattr(socket.socket, "connect", no_traffic)
    with pytest.raises(BackendError, match=r"needs an API key: set \$OPENAI_API_KEY"):
        load_model("openai:gpt-4o")  # the default base URL, api.openai.com
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(AssertionError, match="a connection was opened"):
        load_model("openai:gpt-4o")  # with a key, the start-up check would connect (stopped here)
