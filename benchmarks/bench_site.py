"""Site scale benchmark: build the site from a synthetic catalog of N papers and print time and size.

    python benchmarks/bench_site.py [--papers 5000] [--keep DIR]

Writes the synthetic catalog (the repository's vocabularies, N generated papers) into a temp directory, points
the mkdocs hook at it (MLLM_SAFETY_CATALOG) and runs `mkdocs build --strict` on the repository's mkdocs.yml.
Prints wall and CPU time (wall depends on what else the machine runs), site size, peak memory of the build
and the search index's size. Targets for 5,000 papers: under 60 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tools.catalog.schema import FieldSources  # noqa: E402

SOURCE_FIELDS = list(FieldSources.model_fields)
WORDS = ("visual adversarial typographic jailbreak multimodal safety guard alignment benchmark prompt image "
         "injection robust defense evaluation refusal harmful vision-language model attack shield").split()  # fmt: skip


def _terms(vocab_dir: Path, name: str) -> list[str]:
    data = yaml.safe_load((vocab_dir / f"{name}.yaml").read_text(encoding="utf-8"))
    return [t["id"] for t in data["terms"]]


def make_catalog(root: Path, n: int, seed: int = 0) -> None:
    """A valid synthetic catalog of ``n`` papers under ``root`` (vocabularies copied from the repository)."""
    rng = random.Random(seed)
    shutil.copytree(REPO / "catalog" / "vocab", root / "vocab")
    v = root / "vocab"
    pools = {k: _terms(v, k) for k in ("threat_models", "attack_surfaces", "attack_techniques", "defense_stages",
                                       "defense_kinds", "eval_measures", "harm_categories", "modalities", "models")}  # fmt: skip
    papers = root / "papers"
    papers.mkdir()
    cats = ["attack"] * 5 + ["defense"] * 3 + ["evaluation"] * 3 + ["survey"]
    for i in range(n):
        year = rng.choice(range(2022, 2027))
        cat = rng.choice(cats)
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize()
        p: dict = {
            "id": f"{year}-author{i}-paper{i}",
            "title": f"{title} {i}",
            "authors": [f"Author {rng.randint(1, 900)}" for _ in range(rng.randint(1, 6))],
            "date": f"{year}-{rng.randint(1, 12):02d}",
            "venue": rng.choice([None, "CVPR 2024", "NeurIPS 2024", "ACL 2025"]),
            "arxiv": f"{year % 100:02d}{rng.randint(1, 12):02d}.{50000 + i:05d}",
            "abstract": " ".join(rng.choice(WORDS) for _ in range(180)).capitalize() + ".",
            "links": {"code": f"https://github.com/example/repo{i}"},
            "category": cat,
            "models": rng.sample(pools["models"], 2),
        }
        if cat == "attack":
            p["attack"] = {"threat_model": rng.sample(pools["threat_models"], 1),
                           "surface": rng.sample(pools["attack_surfaces"], 1),
                           "techniques": rng.sample(pools["attack_techniques"], 2)}  # fmt: skip
        elif cat == "defense":
            p["defense"] = {
                "stage": rng.sample(pools["defense_stages"], 1),
                "kind": rng.sample(pools["defense_kinds"], 1),
            }
        elif cat == "evaluation":
            p["evaluation"] = {"measures": rng.sample(pools["eval_measures"], 2),
                               "harm_categories": rng.sample(pools["harm_categories"], 3),
                               "modalities": rng.sample(pools["modalities"], 1)}  # fmt: skip
        p = {k: val for k, val in p.items() if val is not None}
        p["field_sources"] = {f: "manual" for f in SOURCE_FIELDS if p.get(f)}  # where each field came from
        (papers / f"{p['id']}.yaml").write_text(yaml.safe_dump(p, sort_keys=False), encoding="utf-8")
    (root / "results").mkdir()


def main() -> int:
    """Build the synthetic site and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--papers", type=int, default=5000)
    ap.add_argument("--keep", default=None, help="keep the built site in this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cat, site = Path(tmp) / "catalog", Path(args.keep or Path(tmp) / "site")
        t0 = time.perf_counter()
        make_catalog(cat, args.papers)
        t_gen = time.perf_counter() - t0
        env = dict(os.environ, MLLM_SAFETY_CATALOG=str(cat), NO_MKDOCS_2_WARNING="1")
        cmd = [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(site),
        ]
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        t_build = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
            print("error: the build failed", file=sys.stderr)
            return 1
        files = [f for f in site.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        pages = sum(1 for f in files if f.name == "index.html")
        index = site / "search" / "search_index.json"
        print(f"papers:            {args.papers}")
        print(f"catalog generated: {t_gen:.1f} s")
        print(f"mkdocs build:      {t_build:.1f} s wall, {cpu:.1f} s CPU  (target < 60 s)")
        print(
            f"site size:         {size / 1e6:.1f} MB in {len(files)} files, {pages} pages  (target < 300 MB)"
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
        print(f"peak memory:       {peak:.0f} MB (largest child process; target < 300 MB)")
        print(f"search index:      {index.stat().st_size / 1e6:.2f} MB")
        ok = t_build < 60 and size < 300e6 and peak < 300
        print("targets:", "met" if ok else "NOT met")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
