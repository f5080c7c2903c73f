"""The harness's own per-sample bookkeeping cost at JailBreakV-28K scale, with components that cost nothing.

    python benchmarks/bench_bookkeeping.py [--samples 28000] [--batch-size 8] [--code /path/to/other/checkout]

A fake dataset of ``--samples`` requests runs through three conditions (text-only, a fake attack, the fake
attack + a fake defense) with a model, attack, defense and judge that do almost nothing, so what is left is
the harness: selecting samples, the resume lookup, building and appending records, and the metrics. It prints

- the whole ``execute`` wall time minus the time the components themselves took, per (condition, sample)
  record: the bookkeeping cost (target < 1 ms/sample);
- each bookkeeping step timed on its own over the same data: ``select_samples``, the resume lookup (reading
  samples.jsonl back into (condition, id) keys), ``make_record`` + ``RunStore.append``, and ``build_result``;
- a resumed run (every record already on disk): the cost of finding there is nothing to do.

``--code DIR`` measures another checkout of the project instead (e.g. a worktree of an older commit): its
``baselines`` package is imported in place of this one. Threads are pinned to 1 (BLAS, OpenMP) so figures
compare across machines and runs; records go to a temporary folder (``--runs-dir`` to choose its disk).
Wall time includes waiting for the disk (one fsync per chunk) and, on a busy machine, for a CPU; the CPU
figure (every thread of the process) is what the bookkeeping itself costs.

Measured on the project's shared 2-core machine (busy: wall 5-8x CPU), bookkeeping CPU ms per record, this
code vs the code before the fix (4ef3f44, which rebuilt a set of the sample ids once per record: quadratic):
4,000 samples 0.066 vs 0.249; 8,000 samples 0.083 vs 0.643; 28,000 samples 0.079 (0.66 wall) vs not run
(~2 ms by the quadratic trend, minutes of CPU in all).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"


def fakes():
    """Fake components (defined after ``baselines`` is importable from the chosen checkout)."""
    from baselines.base import Attack, Defense, Judge, Model
    from baselines.types import Response, Verdict

    class FastModel(Model):
        """Answers instantly: refuses text-only harmful requests, complies otherwise."""

        name = "fast"

        def generate(self, samples: Sequence, config) -> list:
            return [
                Response(
                    sample_id=s.id,
                    text="I'm sorry, I cannot help."
                    if s.label == "harmful" and "[x]" not in s.text
                    else "Sure.",
                    latency_s=1e-6,
                    n_output_tokens=3,
                )
                for s in samples
            ]

        def info(self) -> dict:
            return {"backend": "fast", "id": "fast-model", "device": "cpu", "labels": ["smoke-test model"]}

    class FastAttack(Attack):
        """Marks the text; no images (image hashing is an attack's cost, not bookkeeping)."""

        name = "fast_attack"

        def apply(self, samples: Sequence, model) -> list:
            return [s.with_(text=f"[x] {s.text}", meta={"attack": "fast"}) for s in samples]

    class FastDefense(Defense):
        """Adds a decision to every response's meta (as real defenses do)."""

        name = "fast_defense"

        def wrap(self, model):
            class Wrapped(Model):
                name = "fast-wrapped"

                def generate(self, samples: Sequence, config) -> list:
                    out = model.generate(samples, config)
                    return [
                        Response(
                            r.sample_id,
                            r.text,
                            r.latency_s,
                            r.n_output_tokens,
                            r.error,
                            {"fast": {"flag": False}},
                        )
                        for r in out
                    ]

                def info(self) -> dict:
                    return model.info()

            return Wrapped({})

    class FastJudge(Judge):
        """A prefix check, as cheap as a judge gets."""

        name = "fast_judge"

        def judge(self, samples: Sequence, responses: Sequence) -> list:
            return [
                Verdict(
                    judge="fast_judge",
                    success=not r.text.startswith("I'm sorry"),
                    refused=r.text.startswith("I'm"),
                )
                for r in responses
            ]

    return FastModel, FastAttack, FastDefense, FastJudge


def make_samples(n: int) -> list:
    """``n`` deterministic requests: half harmful, half benign, over 13 categories (as MM-SafetyBench)."""
    from baselines.types import Sample

    return [
        Sample(
            id=f"q{i:06d}",
            text=f"Request number {i}: how does one do task {i % 97}?",
            label="harmful" if i % 2 else "benign",
            category=f"{i % 13:02d}-Category",
            meta={"source_row": i},
        )
        for i in range(n)
    ]


def setup(n: int, batch_size: int):
    """(config, components) of a three-condition run over ``n`` fake samples."""
    from baselines.base import LoadedDataset
    from baselines.harness import Components
    from baselines.runconfig import ComponentSpec, Condition, RunConfig

    FastModel, FastAttack, FastDefense, FastJudge = fakes()
    config = RunConfig(
        baseline="fast_attack",
        baseline_kind="attack",
        attack=ComponentSpec(name="fast_attack"),
        defense=ComponentSpec(name="fast_defense"),
        model="fast",
        dataset=ComponentSpec(name="fakeset"),
        judges=[ComponentSpec(name="fast_judge")],
        batch_size=batch_size,
        conditions=[
            Condition(name="text-only"),
            Condition(name="fast_attack", attack="fast_attack"),
            Condition(name="fast_attack+fast_defense", attack="fast_attack", defense="fast_defense"),
        ],
    )
    ds = LoadedDataset(name="fakeset", samples=make_samples(n), checksum="sha256:fake", source="bench")
    comps = Components(
        dataset=ds,
        model=FastModel({}),
        attacks={"fast_attack": FastAttack({})},
        defenses={"fast_defense": FastDefense({})},
        judges={"fast_judge": FastJudge({})},
    )
    return config, comps


def timed(fn, *args, **kwargs):
    """(result, wall seconds); the process's CPU seconds (every thread) go into ``CPU[fn.__name__]``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU[getattr(fn, "__name__", "?")] = time.process_time() - c0
    return out, time.perf_counter() - t0


CPU: dict[str, float] = {}


def main() -> None:
    """Measure and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=28_000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--code", type=Path, help="another checkout whose baselines package to measure")
    ap.add_argument(
        "--runs-dir", type=Path, help="parent of the temporary runs folder (default: the system's)"
    )
    args = ap.parse_args()
    sys.path.insert(0, str((args.code or Path(__file__).resolve().parents[1]).resolve()))
    import baselines
    from baselines.harness import execute, make_record, select_samples
    from baselines.runresult import build_result
    from baselines.runstore import RunStore, record_key

    print(f"code: {Path(baselines.__file__).resolve().parent.parent}")
    config, comps = setup(args.samples, args.batch_size)
    n_conds = len(config.conditions)
    n_rec = args.samples * n_conds
    with tempfile.TemporaryDirectory(dir=args.runs_dir) as tmp:
        out, total = timed(execute, config, comps, Path(tmp) / "runs", progress=False, log=lambda m: None)
        cpu_total = CPU["execute"]
        components = sum(out.stats[k] for k in ("attack_s", "generate_s", "judge_s"))
        _, resumed = timed(execute, config, comps, Path(tmp) / "runs", progress=False, log=lambda m: None)
        store = RunStore(out.run_dir)
        selected, t_select = timed(select_samples, comps.dataset.samples, config)

        def resume_lookup():
            done = {record_key(r) for r in store.load()}
            return [[s for s in selected if (c.name, s.id) not in done] for c in config.conditions]

        _, t_lookup = timed(resume_lookup)
        model = comps.model
        responses = model.generate(selected, config.generation_config())
        verdicts = comps.judges["fast_judge"].judge(selected, responses)
        scratch = RunStore(Path(tmp) / "scratch")
        timings = {"attack_s": 0.0, "generate_s": 0.0, "judge_s": 0.0}

        def write_records():
            step = args.batch_size * 4
            for c in config.conditions:
                for i in range(0, len(selected), step):
                    scratch.append(
                        [
                            make_record(c.name, s, [], r, {"fast_judge": v}, timings)
                            for s, r, v in zip(
                                selected[i : i + step],
                                responses[i : i + step],
                                verdicts[i : i + step],
                                strict=True,
                            )
                        ]
                    )

        _, t_write = timed(write_records)
        records = store.load()
        _, t_metrics = timed(build_result, store.read_meta(), records, store.sha256())
    ms = 1000 / n_rec
    print(f"{args.samples} samples x {n_conds} conditions = {n_rec} records, batch size {args.batch_size}")
    print(f"execute, fresh:   {total:8.2f} s wall ({cpu_total:.2f} s CPU), components {components:6.2f} s")
    print(f"  bookkeeping:    {(total - components) * ms:8.3f} ms/sample wall, (target < 1 ms)")
    print(
        f"                  {(cpu_total - components) * ms:8.3f} ms/sample CPU (less the components' wall time)"
    )
    print(f"execute, resumed: {resumed:8.2f} s = {resumed * ms:.3f} ms/sample")
    print("steps on their own (ms/sample):")
    print(f"  select samples  {t_select * ms:8.4f}")
    print(f"  resume lookup   {t_lookup * ms:8.4f}")
    print(
        f"  record writing  {t_write * ms:8.4f}  (make_record + append, fsync per chunk of {args.batch_size * 4})"
    )
    print(
        f"  metrics         {t_metrics * ms:8.4f}  (build_result: ASR, refusal, per category, bootstrap CIs)"
    )


if __name__ == "__main__":
    main()
