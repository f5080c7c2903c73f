"""The request pipeline for endpoints (baselines.requestpool, baselines.imagecache): one sliding window of
``concurrency`` requests for a whole condition, whatever the batch size; records as answers arrive, the same
records as the chunked loop; a killed run resumes; each distinct image encoded once."""

from __future__ import annotations

import pytest
from PIL import Image
from servers.openai_server import FakeOpenAIServer

import baselines.imagecache as imagecache
from baselines.harness import execute, load_components
from baselines.runrequest import RunRequest
from baselines.runstore import RunStore, records_sha256


def config(url: str, *, concurrency: int, limit: int, batch_size: int = 2, sets: tuple[str, ...] = ()):
    return RunRequest(
        baseline="figstep",
        model="openai:fake-vlm",
        base_url=url,
        limit=limit,
        batch_size=batch_size,
        sets=[f"model.concurrency={concurrency}", "model.api_key_env=ATLAS_NO_KEY", *sets],
    ).config()


def test_the_window_stays_full_whatever_the_batch_size(tmp_path):
    with FakeOpenAIServer(delay_s=1.0) as srv:
        cfg = config(srv.url, concurrency=12, limit=24, batch_size=1)
        out = execute(cfg, load_components(cfg), tmp_path, progress=False)
        peak = srv.max_in_flight
    assert out.n_new == 48  # 24 samples x (text-only, figstep)
    # chunks of 1, 2, 4 batches of 1 capped the old loop at 4 requests in flight
    assert peak == 12
    records = RunStore(out.run_dir).load()
    assert len(records) == 48 and not any(r["error"] for r in records)
    assert all(r["timings"]["generate_s"] >= 1.0 for r in records)  # each record: its own request's latency


def test_same_records_as_the_chunked_loop(tmp_path):
    with FakeOpenAIServer() as srv:
        cfg = config(srv.url, concurrency=8, limit=10)
        comps = load_components(cfg)
        window = execute(cfg, comps, tmp_path / "window", progress=False)
        comps.model.per_request = False  # the chunked loop: one generate call per chunk
        chunked = execute(cfg, comps, tmp_path / "chunked", progress=False)
    a, b = RunStore(window.run_dir).load(), RunStore(chunked.run_dir).load()
    assert len(a) == len(b) == 20
    assert records_sha256(a) == records_sha256(b)
    assert window.result["conditions"] == chunked.result["conditions"]


def test_a_killed_run_keeps_what_arrived_and_resumes(tmp_path):
    class Killed(Exception):
        pass

    with FakeOpenAIServer(delay_s=0.05) as srv:
        cfg = config(srv.url, concurrency=4, limit=12)
        comps = load_components(cfg)

        def kill(k: int) -> None:
            if k == 3:
                raise Killed

        with pytest.raises(Killed):
            execute(cfg, comps, tmp_path / "runs", progress=False, after_batch=kill)
        kept = RunStore(tmp_path / "runs" / cfg.run_id()).load()
        assert 0 < len(kept) < 24  # the groups recorded before the kill are on disk
        n_before = len(srv.chat_requests)
        resumed = execute(cfg, load_components(cfg), tmp_path / "runs", progress=False)  # as a new process
        assert resumed.n_resumed == len(kept) and resumed.n_new == 24 - len(kept)
        assert len(srv.chat_requests) - n_before == 24 - len(kept)  # nothing asked twice after the resume
        whole = execute(cfg, load_components(cfg), tmp_path / "fresh", progress=False)
    got = RunStore(resumed.run_dir).load()
    assert len(got) == 24 and len({(r["condition"], r["id"]) for r in got}) == 24
    assert records_sha256(got) == records_sha256(RunStore(whole.run_dir).load())


def test_an_endpoint_that_goes_down_stops_the_run_and_keeps_the_answers(tmp_path):
    from baselines.models.openai import EndpointDown

    with FakeOpenAIServer() as srv:
        cfg = config(srv.url, concurrency=2, limit=20, sets=("model.breaker_after=2", "model.max_retries=0"))
        comps = load_components(cfg)
        srv.always("503")
        for _ in range(6):
            srv.push("ok")
        with pytest.raises(EndpointDown, match="circuit breaker"):
            execute(cfg, comps, tmp_path, progress=False)
    records = RunStore(tmp_path / cfg.run_id()).load()
    assert 1 <= len(records) <= 6 and not any(r["error"] for r in records)


def test_each_distinct_image_is_encoded_once(monkeypatch):
    cache = imagecache.DataURLCache()
    hashed = []
    real = imagecache.image_sha256
    monkeypatch.setattr(imagecache, "image_sha256", lambda im: (hashed.append(1), real(im))[1])
    a = Image.new("RGB", (40, 30), (200, 10, 10))
    same_content = a.copy()
    url = cache.get(a)
    assert url.startswith("data:image/png;base64,")
    assert cache.get(same_content) == url and cache.get(a) == url
    assert cache.encoded == 1 and cache.hits == 2
    a.putpixel((0, 0), (0, 0, 0))  # changed in place: new content, new URL
    assert cache.get(a) != url and cache.encoded == 2
    # a hash handed over by the harness is not computed again
    b = Image.new("L", (8, 8), 3)
    cache.remember(b, real(b))
    n = len(hashed)
    cache.get(b)
    assert len(hashed) == n and cache.encoded == 3
    # the URL decodes to the same pixels once converted to RGB (as an endpoint's processor does); an image
    # with three equal channels travels as grayscale, a coloured one as RGB
    import base64
    import io

    def decoded(im):
        return Image.open(io.BytesIO(base64.b64decode(cache.get(im).split(",", 1)[1])))

    assert decoded(b).mode == "L" and decoded(b).convert("RGB").tobytes() == b.convert("RGB").tobytes()
    assert decoded(a).mode == "RGB" and decoded(a).tobytes() == a.tobytes()
    grey_rgb = Image.new("RGB", (8, 8), (9, 9, 9))
    grey_rgb.putpixel((1, 1), (200, 200, 200))
    assert decoded(grey_rgb).mode == "L" and decoded(grey_rgb).convert("RGB").tobytes() == grey_rgb.tobytes()


def test_the_lru_is_bounded():
    cache = imagecache.DataURLCache(max_chars=400)
    for v in range(20):
        cache.get(Image.new("RGB", (4, 4), (v, v, v)))
    assert cache.chars <= 400 and 0 < len(cache.urls) < 20
