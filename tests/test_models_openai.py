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
    out = _model(server).generate([Sample(id="a", text="x")], CFG)
    first, second = server.chat_requests
    assert out[0].error is None and out[0].meta["attempts"] == 2
    assert second.time - first.time >= 0.95


def test_retry_after_http_date_is_honoured(server) -> None:
    server.push("429", retry_after=formatdate(time.time() + 2, usegmt=True))
    out = _model(server).generate([Sample(id="a", text="x")], CFG)
    first, second = server.chat_requests
    assert out[0].error is None and second.time - first.time >= 0.9


def test_retry_after_is_capped(server) -> None:
    server.push("429", retry_after="3600")
    out = _model(server, max_retry_after_s=0.2).generate([Sample(id="a", text="x")], CFG)
    first, second = server.chat_requests
    assert out[0].error is None and 0.15 <= second.time - first.time < 2


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
    _model(server, backoff_base_s=0.1).generate([Sample(id="a", text="x")], CFG)
    t = [r.time for r in server.chat_requests]
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    # full jitter in [cap/2, cap] with cap 0.1, 0.2, 0.4
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


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


def test_client_errors_are_not_retried(server, monkeypatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY + "-wrong")
    out = _model(server).generate([Sample(id="a", text="x")], CFG)
    assert "HTTP 401" in out[0].error and len(server.chat_requests) == 1


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
    m = _model(server, max_retries=1)
    out = m.generate([Sample(id="a", text="x"), Sample(id="b", text="y")], CFG)
    monkeypatch.setenv("ATLAS_TEST_KEY", KEY + "X")
    out += m.generate([Sample(id="c", text="z")], CFG)  # 401 with a wrong key
    assert any(r.error for r in out) and caplog.records  # errors and retry logs happened
    assert KEY not in caplog.text
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
    assert url in str(e.value) and time.monotonic() - t0 < 3


def test_bad_base_url_scheme() -> None:
    with pytest.raises(BackendError, match="http"):
        load_model("openai:m", base_url="ftp://example.org/v1")
