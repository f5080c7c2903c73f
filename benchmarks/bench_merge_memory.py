"""Memory and time of ``mllm-safety merge`` against a plain in-memory merge, on synthetic shards.

    python benchmarks/bench_merge_memory.py [--per-shard 1000 5000] [--shards 3]

Three shard runs of a two-condition FigStep configuration are made with the harness on a fake model (as the
tests do), then their samples.jsonl are rewritten to hold ``--per-shard`` samples each (two records per
sample, distinct ids and prompts). For each size it times, and traces the Python memory peak of (tracemalloc,
run separately from the timing, which it slows):

- plain in-memory merge: load every shard's records into one dict, sort, write (what ``merge`` did before);
- ``baselines.runresult.merge_runs``: streamed through sorted temporary files, then the Result built from the
  merged file.

Both include writing the merged samples.jsonl; only ``merge_runs`` also builds the Result (its cost is in its
time, not hidden). Memory that does not grow with the run is the target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))


def make_shards(root: Path, per_shard: int, n_shards: int) -> list[Path]:
    """Shard run directories of one configuration, each with ``per_shard`` samples x 2 conditions."""
    from test_harness import make_comps, make_config, make_samples

    from baselines.harness import execute
    from baselines.runstore import RunStore

    samples = make_samples(10 * n_shards)
    dirs = [
        execute(make_config(shard=(i, n_shards)), make_comps(samples), root, progress=False).run_dir
        for i in range(n_shards)
    ]
    for k, d in enumerate(dirs):
        store = RunStore(d)
        one = {}
        for r in store.load():
            one.setdefault(r["condition"], r)
        with open(store.samples_path, "w", encoding="utf-8") as f:
            for j in range(per_shard):
                for r in one.values():
                    rec = dict(r, id=f"x{k}-{j:07d}", prompt=f"{r['prompt']} {j}")
                    f.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
        meta = store.read_meta()
        meta["dataset"]["n_samples"] = per_shard
        store.write_meta(meta)
    return dirs


def plain_merge(dirs: list[Path], out: Path) -> int:
    """Every record in one dict (first of a pair kept), sorted by (condition, id), written: the in-memory way."""
    from baselines.runstore import RunStore

    records: dict[tuple[str, str], dict] = {}
    for d in dirs:
        for r in RunStore(d).load(repair=False):
            records.setdefault((r["condition"], r["id"]), r)
    out.mkdir(parents=True, exist_ok=True)
    RunStore(out).write_all(sorted(records.values(), key=lambda r: (r["condition"], r["id"])))
    return len(records)


def measure(fn, *, trace: bool) -> tuple[float, float]:
    """(wall seconds, traced peak MiB or nan)."""
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    peak = float("nan")
    if trace:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return wall, peak


def main(argv: list[str] | None = None) -> int:
    """Build the shards at each size and print both merges' time and memory peak."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-shard", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--shards", type=int, default=3)
    args = ap.parse_args(argv)
    from baselines.runresult import merge_runs

    for per in args.per_shard:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            dirs = make_shards(root, per, args.shards)
            n = 2 * per * args.shards
            rows = {}
            for name, fn in {
                "plain in-memory merge": lambda i, d=dirs, r=root: plain_merge(d, r / f"plain{i}"),
                "merge_runs (streamed)": lambda i, d=dirs, r=root: merge_runs(d, r / f"merged{i}"),
            }.items():
                wall, _ = measure(lambda fn=fn: fn(0), trace=False)
                _, peak = measure(lambda fn=fn: fn(1), trace=True)
                rows[name] = (wall, peak)
            print(f"\n{n} records in {args.shards} shards")
            for name, (wall, peak) in rows.items():
                print(f"  {name:<24}: {wall:6.2f} s, Python memory peak {peak:7.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
