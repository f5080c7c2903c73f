"""Time `mllm-safety catalog check` on a synthetic catalog of N papers (default 10,000; target < 10 s).

Usage: python benchmarks/bench_catalog_check.py [--papers N] [--vocab DIR] [--repeat R]

The catalog is generated in a temporary directory with the vocabularies of ``--vocab`` (default: the
repository's catalog/vocab, else the test fixture's); every paper is valid and uses several facets, target
models and a reported result, so the run exercises parsing, validation and all cross-checks.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _terms(vocab: Path, name: str) -> list[str]:
    path = vocab / f"{name}.yaml"
    if not path.exists():
        return []
    return [t["id"] for t in yaml.safe_load(path.read_text(encoding="utf-8"))["terms"]]


def generate(root: Path, n: int, vocab: Path, seed: int = 0) -> None:
    """Write ``n`` valid paper files (and a copy of the vocabularies) under ``root``."""
    rng = random.Random(seed)
    shutil.copytree(vocab, root / "vocab")
    (root / "papers").mkdir()
    pick = {
        name: _terms(vocab, name)
        for name in (
            "attack_techniques",
            "threat_models",
            "attack_surfaces",
            "defense_stages",
            "defense_kinds",
            "eval_measures",
            "harm_categories",
            "modalities",
            "models",
            "datasets",
        )
    }

    def some(name: str, k: int) -> list[str]:
        return rng.sample(pick[name], min(k, len(pick[name])))

    for i in range(n):
        year = 2020 + i % 7
        pid = f"{year}-author{i}-method{i}"
        category = ("attack", "defense", "evaluation")[i % 3]
        paper: dict = {
            "id": pid,
            "title": f"Method {i}: A Study of Multimodal Safety Number {i}",
            "authors": [f"Author {i} Surname", "Second Author", "Third Author"],
            "affiliations": ["Some University"],
            "date": f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "venue": "ECCV 2024" if i % 2 else None,
            "arxiv": f"{year % 100:02d}{1 + i % 12:02d}.{i:05d}",
            "links": {"paper": f"https://arxiv.org/abs/{i}", "code": f"https://github.com/x/m{i}"},
            "category": category,
            "models": some("models", 3),
            "sources": ["synthetic"],
            "notes": "Synthetic paper for the catalog-check benchmark.",
        }
        if category == "attack":
            paper["attack"] = {
                "threat_model": some("threat_models", 1),
                "surface": some("attack_surfaces", 1),
                "techniques": some("attack_techniques", 2),
            }
        elif category == "defense":
            paper["defense"] = {"stage": some("defense_stages", 1), "kind": some("defense_kinds", 2)}
        else:
            paper["evaluation"] = {
                "measures": some("eval_measures", 2),
                "size": 1000 + i,
                "harm_categories": some("harm_categories", 3),
                "modalities": some("modalities", 2),
                "dataset_released": True,
            }
        if pick["models"] and pick["datasets"]:
            paper["reported_results"] = [
                {
                    "model": some("models", 1)[0],
                    "dataset": some("datasets", 1)[0],
                    "metric": "asr",
                    "value": round(rng.random(), 3),
                    "where": "Table 1",
                }
            ]
        paper = {k: v for k, v in paper.items() if v not in (None, [])}
        text = yaml.safe_dump(paper, sort_keys=False, allow_unicode=True)
        (root / "papers" / f"{pid}.yaml").write_text(text, encoding="utf-8")


def main() -> int:
    """Generate the catalog, time the real CLI entry point, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=10_000)
    ap.add_argument("--vocab", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    vocab = args.vocab or REPO / "catalog" / "vocab"
    if not list(vocab.glob("*.yaml")):
        vocab = REPO / "tests" / "fixtures" / "catalog" / "vocab"
    sys.path.insert(0, str(REPO))
    from tools.cli.main import main as cli_main

    print(f"libyaml C loader: {getattr(yaml, '__with_libyaml__', False)}; vocabularies from {vocab}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        t0 = time.perf_counter()
        generate(root, args.papers, vocab)
        print(f"generated {args.papers} papers in {time.perf_counter() - t0:.1f} s")
        times = []
        for _ in range(args.repeat):
            buf = io.StringIO()
            t0 = time.perf_counter()
            with redirect_stdout(buf):
                code = cli_main(["catalog", "check", "--root", str(root)])
            times.append(time.perf_counter() - t0)
            summary = buf.getvalue().strip().splitlines()[-1]
            print(f"catalog check: exit {code}, '{summary}', {times[-1]:.2f} s")
            if code != 0:
                print(buf.getvalue()[:2000])
    best = min(times)
    print(f"RESULT: {args.papers} papers checked in {best:.2f} s (best of {len(times)}; target < 10 s)")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
