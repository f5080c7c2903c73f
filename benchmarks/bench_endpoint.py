"""The harness against the ``openai`` back-end alone, on a local fake endpoint with realistic latency.

    python benchmarks/bench_endpoint.py [--n 320] [--concurrency 8 64] [--latency 0.2 1.0] [--repeats 2]

A fake OpenAI-compatible endpoint (``tests/servers/openai_server.py``) runs in its own process and answers each
request after a latency drawn uniformly from ``--latency`` (seeded by the request's text, so every path sees
the same latencies). On the same ``--n`` FigStep samples, at each concurrency, it times:

- back-end alone: one ``OpenAIModel.generate`` call over the already rendered samples (the endpoint's bound:
  no rendering, no judging, no records);
- harness: ``baselines.harness.execute`` on the figstep condition (render, hash, one sliding window of
  ``concurrency`` requests for the whole condition, refusal judge, records appended as answers arrive);
- harness, chunked: the same with the window switched off (one ``generate`` call per chunk of 1, 2, then 4
  batches, as before issue 15), for reference.

Each path starts with an empty data-URL cache (every image is encoded in every path). It prints wall seconds,
CPU seconds of this process, the most requests in flight (counted in the client), the ideal time
(sum of latencies / concurrency) and harness / back-end. Target (issue 15): harness within 10% at 64.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def latency_of(body: dict[str, Any], lo: float, hi: float) -> float:
    """The fake endpoint's latency for a request body: drawn from a hash of its user turn (text and image data
    URLs), so it is the same for a sample on every path and differs between samples."""
    h = hashlib.sha256()
    for m in body.get("messages", []):
        content = m.get("content")
        for part in content if isinstance(content, list) else [{"text": content}]:
            h.update(str(part.get("text") or (part.get("image_url") or {}).get("url") or "").encode())
    u = int(h.hexdigest()[:8], 16) / 0xFFFFFFFF
    return lo + (hi - lo) * u


def serve(lo: float, hi: float) -> None:
    """Run the fake endpoint in this process until killed; print its URL first."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from servers.openai_server import FakeOpenAIServer

    def reply(body: dict[str, Any]) -> str:
        time.sleep(latency_of(body, lo, hi))
        return "Sure, here is how."

    with FakeOpenAIServer() as srv:
        srv.reply = reply
        print(srv.url, flush=True)
        while True:
            time.sleep(3600)


class InFlight:
    """Counts the requests the client has in flight (wraps ``OpenAIModel._one``)."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def install(self) -> None:
        """Wrap the back-end's one-request method so every request is counted."""
        from baselines.models.openai import OpenAIModel

        one = OpenAIModel._one

        def counted(model: Any, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                return one(model, *args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

        OpenAIModel._one = counted

    def reset(self) -> None:
        """Start a new count."""
        with self.lock:
            self.now = self.peak = 0


def make_model(url: str, concurrency: int) -> Any:
    """The openai back-end against the fake endpoint."""
    from baselines.models import load_model

    return load_model(
        "openai:fake-vlm", base_url=url, params={"concurrency": concurrency, "api_key_env": "BENCH_NO_KEY"}
    )


def harness(model: Any, url: str, samples: list, batch_size: int, runs: Path, *, window: bool) -> Any:
    """``execute`` on the figstep condition; ``window=False`` switches the request window off (chunked)."""
    from baselines.attacks.figstep import FigStep
    from baselines.base import LoadedDataset
    from baselines.harness import Components, execute
    from baselines.judges.refusal import RefusalJudge
    from baselines.runconfig import ComponentSpec, Condition, RunConfig

    model.per_request = window
    config = RunConfig(
        baseline="figstep",
        baseline_kind="attack",
        attack=ComponentSpec(name="figstep", params=FigStep.Params().model_dump()),
        model="openai:fake-vlm",
        model_params=model.params.model_dump(mode="json"),
        base_url=url,
        dataset=ComponentSpec(name="bench"),
        judges=[ComponentSpec(name="refusal", params=RefusalJudge.Params().model_dump())],
        batch_size=batch_size,
        conditions=[Condition(name="figstep", attack="figstep")],
    )
    comps = Components(
        dataset=LoadedDataset(name="bench", samples=samples, checksum="-", source="benchmark"),
        model=model,
        attacks={"figstep": FigStep()},
        judges={"refusal": RefusalJudge()},
    )
    return execute(config, comps, runs, fresh=True, progress=False)


def main(argv: list[str] | None = None) -> int:
    """Start the endpoint, time the paths at each concurrency, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=320)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--latency", type=float, nargs=2, default=[0.2, 1.0], metavar=("MIN", "MAX"))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="alternate the paths this often; best of each")
    ap.add_argument("--no-chunked", action="store_true", help="skip the chunked (pre-issue-15) harness path")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    lo, hi = args.latency
    if args.serve:
        serve(lo, hi)
        return 0

    import tempfile

    from bench_harness import make_samples

    from baselines.attacks.figstep import FigStep
    from baselines.imagecache import CACHE
    from baselines.models.openai import build_messages
    from baselines.types import GenerationConfig

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(lo), str(hi)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        samples = make_samples(args.n)
        attacked = FigStep().apply(samples, None)
        total_latency = sum(latency_of({"messages": build_messages(s)}, lo, hi) for s in attacked)
        counter = InFlight()
        counter.install()
        print(
            f"fake endpoint: latency uniform in [{lo}, {hi}] s (mean {total_latency / args.n:.2f} s), own process; "
            f"{args.n} FigStep samples (760x760 images), batch size {args.batch_size}, best of {args.repeats}"
        )
        paths = ["backend", "harness"] + ([] if args.no_chunked else ["chunked"])
        names = {"backend": "back-end alone", "harness": "harness", "chunked": "harness, chunked (before)"}
        with tempfile.TemporaryDirectory() as tmp:
            for c in args.concurrency:
                model = make_model(url, c)
                best: dict[str, tuple[float, float, int]] = {}
                for r in range(args.repeats):
                    for path in paths:
                        CACHE.clear()
                        counter.reset()
                        w0, c0 = time.perf_counter(), time.process_time()
                        if path == "backend":
                            model.per_request = True
                            out = model.generate(attacked, GenerationConfig(max_new_tokens=64))
                            assert not any(x.error for x in out), [x.error for x in out if x.error][:1]
                        else:
                            runs = Path(tmp) / f"{path}-{c}-{r}"
                            o = harness(model, url, samples, args.batch_size, runs, window=path == "harness")
                            assert o.n_new == args.n, o.n_new
                        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                        if path not in best or wall < best[path][0]:
                            best[path] = (wall, cpu, counter.peak)
                print(f"\nconcurrency {c}: ideal {total_latency / c:.2f} s (sum of latencies / concurrency)")
                for path in paths:
                    wall, cpu, peak = best[path]
                    print(
                        f"  {names[path]:<27}: {wall:7.2f} s wall, {cpu:6.2f} s CPU, {peak:3d} in flight at most"
                    )
                ratio = best["harness"][0] / best["backend"][0]
                print(f"  harness / back-end alone: {ratio:.3f}x (target <= 1.10)")
                if "chunked" in best:
                    print(
                        f"  chunked harness / back-end alone: {best['chunked'][0] / best['backend'][0]:.3f}x"
                    )
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
