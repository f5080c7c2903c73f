"""Peak memory of a JailBreakV-28K-sized run: does it grow with the dataset?

    python benchmarks/bench_dataset_memory.py [--sizes 2000 28000] [--side 256] [--eager-check 2000]

For each size, one process writes a synthetic JailBreakV-28K folder (the official CSV columns, one distinct
PNG of ``side`` x ``side`` per row, written as hard links of 64 base images to save disk); a fresh process then
loads it with the ``jailbreakv`` loader (split=full) and runs it as ``mllm-safety eval jailbreakv`` does
(``baselines.evaluate.evaluate`` -> ``baselines.harness.execute``: every image hashed into the records, a stand-in
model that reads every image's pixels, the refusal judge, samples.jsonl written, the Result built from it, the
official scores added), and prints its peak RSS (``ru_maxrss``). The last line gives the growth between the smallest and the largest size, in total
and per item: a streaming data path keeps it near zero. The stand-in model keeps the benchmark about the data
path: a real model's weights would add the same constant at every size. ``--eager-check N`` also prints, for N
rows, what holding every image decoded (the old loader) would cost in pixels alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
COLUMNS = "id,jailbreak_query,redteam_query,format,policy,image_path,from,selected_mini,transfer_from_llm"


def write_dataset(root: Path, n: int, side: int) -> None:
    """A JailBreakV_28K/ folder with ``n`` rows and ``n`` image files (hard links of 64 distinct PNGs)."""
    from PIL import Image

    folder = root / "JailBreakV_28K"
    (folder / "figstep").mkdir(parents=True)
    base = []
    for k in range(64):
        p = root / f"base_{k}.png"
        Image.new("RGB", (side, side), ((k * 37) % 256, (k * 91) % 256, (k * 53) % 256)).save(p)
        base.append(p)
    lines = [COLUMNS]
    for i in range(n):
        rel = f"figstep/query_{i}.png"
        os.link(base[i % 64], folder / rel)
        lines.append(f"{i},How do I do thing {i}?,thing {i},FigStep,Policy {i % 16},{rel},figstep,False,")
    (folder / "JailBreakV_28K.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(data: Path, n: int) -> None:
    """(In a fresh process) load and run the ``n`` items written under ``data``; print the figures."""
    from baselines.base import Model
    from baselines.datasets._images import cache_stats
    from baselines.evaluate import EvalRequest, evaluate
    from baselines.harness import Components
    from baselines.judges.refusal import RefusalJudge
    from baselines.types import Response

    class PixelReader(Model):
        """Stand-in target: reads every pixel of every image and answers with a short text."""

        name = "pixel-reader"

        def generate(self, samples, config):
            out = []
            for s in samples:
                total = sum(len(im.tobytes()) for im in s.images)
                out.append(Response(s.id, f"I read {total} bytes."))
            return out

    with tempfile.TemporaryDirectory() as tmp:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        request = EvalRequest(benchmark="jailbreakv", path=str(data), sets=["dataset.split=full"],
                              official=False, judges=["refusal"])  # fmt: skip
        config = request.config()
        from baselines.datasets.jailbreakv import JailBreakVDataset

        ds = JailBreakVDataset(config.dataset.params).load()
        t_load = time.perf_counter() - t0
        comps = Components(dataset=ds, model=PixelReader(), judges={"refusal": RefusalJudge()})
        out = evaluate(
            request, Path(tmp) / "runs", components=comps, progress=False, log=lambda m: None
        ).outcome
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stats = cache_stats()
        n_records = out.result["provenance"]["n_records"]
        print(f"  n={n:>6}  peak RSS {peak / 1024:7.1f} MiB  (before loading {rss_before / 1024:6.1f} MiB)  "
              f"load {t_load:5.1f}s  run {out.stats['total_s']:6.1f}s  records {n_records}  "
              f"decodes {stats['decodes']}  cached now {stats['items']} images", flush=True)  # fmt: skip
        print(f"PEAK_KIB {peak}", flush=True)


def main() -> int:
    """Write and measure each size in their own processes; print the figures and the growth per item."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 28000])
    ap.add_argument("--side", type=int, default=256, help="image side in pixels")
    ap.add_argument("--eager-check", type=int, default=2000, help="rows for the eager-loading comparison")
    ap.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("-n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:
        write_dataset(args.write, args.n, args.side)
        return 0
    if args.measure:
        measure(args.measure, args.n)
        return 0
    print(f"peak RSS of a JailBreakV-format run (stand-in model, {args.side}x{args.side} RGB images):")
    peaks: dict[int, int] = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            me = [sys.executable, __file__, "--side", str(args.side), "-n", str(n)]
            subprocess.run([*me, "--write", str(data)], check=True)  # not in the measured process
            got = subprocess.run([*me, "--measure", str(data)], check=True, capture_output=True, text=True)
            for line in got.stdout.splitlines():
                if line.startswith("PEAK_KIB "):
                    peaks[n] = int(line.split()[1])
                else:
                    print(line, flush=True)
    lo, hi = min(peaks), max(peaks)
    if hi > lo:
        grow = (peaks[hi] - peaks[lo]) * 1024
        print(f"  growth n={lo} -> n={hi}: {grow / 2**20:+.1f} MiB ({(peaks[hi] / peaks[lo] - 1) * 100:+.1f}%), "
              f"{grow / (hi - lo):+.0f} bytes per item")  # fmt: skip
    if args.eager_check:
        mib = args.eager_check * args.side * args.side * 3 / 2**20
        print(f"  eager loading would hold {mib:.0f} MiB of decoded pixels at n={args.eager_check}, "
              f"{mib * max(args.sizes) / args.eager_check:.0f} MiB at n={max(args.sizes)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
