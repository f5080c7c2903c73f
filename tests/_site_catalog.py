"""A small catalog for the site tests: the repo's vocabularies, a few papers (one malicious) and a result."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tools.catalog.schema import FieldSources

REPO = Path(__file__).resolve().parents[1]
SOURCE_FIELDS = list(FieldSources.model_fields)

MALICIOUS_TITLE = (
    "<script>alert(1)</script> [x](javascript:alert(1)) ![](http://evil.invalid/x.png) *bold* "
    "{: onclick=alert(1) } </div> <img src=x onerror=alert(2)>"
)


def estimate(value: float, n: int = 20) -> dict[str, Any]:
    """A valid Estimate dict with a plausible interval."""
    return {"value": value, "ci_low": max(0.0, value - 0.2), "ci_high": min(1.0, value + 0.2), "n": n}


def papers(malicious: bool) -> list[dict[str, Any]]:
    """Paper dicts covering every category, facets, reported results and (optionally) a hostile entry."""
    out: list[dict[str, Any]] = [
        {
            "id": "2023-gong-figstep",
            "title": "FigStep: Jailbreaking Large Vision-language Models via Typographic Visual Prompts",
            "authors": ["Yichen Gong", "Delong Ran"],
            "date": "2023-11-09",
            "venue": "AAAI 2025",
            "arxiv": "2311.05608",
            "abstract": "We propose FigStep, a black-box jailbreak.\n\nIt renders instructions as images.",
            "links": {
                "paper": "https://arxiv.org/abs/2311.05608",
                "code": "https://github.com/ThuCCSLab/FigStep",
            },
            "category": "attack",
            "attack": {
                "threat_model": ["black-box"],
                "surface": ["image+text"],
                "techniques": ["typographic"],
            },
            "models": ["llava-1.5-7b"],
            "baseline": ["figstep"],
            "reported_results": [
                {
                    "model": "llava-1.5-7b",
                    "dataset": "safebench",
                    "metric": "asr",
                    "value": 0.84,
                    "condition": "figstep",
                    "judge": "manual review",
                    "where": "Table 2",
                },
                {  # the same setup as result_hf(): paired side by side
                    "model": "llava-1.5-7b",
                    "dataset": "safebench",
                    "metric": "asr",
                    "value": 0.71,
                    "condition": "figstep",
                    "judge": "refusal",
                    "where": "Table 9",
                },
            ],
        },
        {
            "id": "2023-liu-mm-safetybench",
            "title": "MM-SafetyBench: A Benchmark for Safety Evaluation of Multimodal Large Language Models",
            "date": "2023-11-29",
            "venue": "ECCV 2024",
            "category": "evaluation",
            "also": ["attack"],
            "evaluation": {"measures": ["jailbreak-robustness"], "size": 5040, "dataset_released": True},
        },
        {
            "id": "2024-wang-adashield",
            "title": "AdaShield: Safeguarding MLLMs by Adaptive Shield Prompting",
            "date": "2024-03-14",
            "category": "defense",
            "defense": {"stage": ["inference"]},
        },
        {
            "id": "2024-liu-mllm-safety-survey",
            "title": "Safety of Multimodal Large Language Models: A Survey",
            "date": "2024-02-01",
            "category": "survey",
        },
        {
            "id": "2024-doe-other-attack",
            "title": "Another Visual Jailbreak",
            "date": "2024-06",
            "category": "attack",
        },
    ]
    # the provenance and reuse fields the site shows
    out[0].update(
        implemented_in=["garak"], evaluated_on=["safebench"], verified=True, verified_by=["arxiv-api"]
    )
    if malicious:
        out.append(
            {
                "id": "2024-evil-title",
                "title": MALICIOUS_TITLE,
                "authors": ["<b>Mallory</b>", "*Eve*"],
                "date": "2024-05-01",
                "category": "attack",
                "venue": "[venue](javascript:alert(4))",
                "abstract": "</div><script>alert(5)</script>\n\n# heading {: onclick=x }",
                "notes": "<iframe src=http://evil.invalid></iframe>",
            }
        )
    for p in out:  # the schema asks where each metadata field came from, and says when authors are unknown
        if not p.get("authors"):
            p["authors_status"] = "unknown"
        p["field_sources"] = {f: "manual" for f in SOURCE_FIELDS if p.get(f)}
    return out


def result(paper_id: str = "2023-gong-figstep") -> dict[str, Any]:
    """A reproduced result of FigStep on the model organism (labelled as such)."""
    judges = [{"judge": "refusal", "asr": estimate(0.6), "refusal_rate_benign": estimate(0.1)}]
    return {
        "baseline": "figstep",
        "paper_id": paper_id,
        "model": {"backend": "organism", "id": "organism", "labels": ["model organism"]},
        "dataset": {"name": "bundled", "checksum": "abc123", "n_samples": 20},
        "judges": [{"judge": "refusal", "hash": "h"}],
        "conditions": [
            {
                "condition": "text-only",
                "n_samples": 20,
                "judges": [{"judge": "refusal", "asr": estimate(0.1)}],
            },
            {"condition": "figstep", "attack": "figstep", "n_samples": 20, "judges": judges},
        ],
        "config": {"baseline": "figstep"},
        "provenance": {"package_version": "0.1.0", "git_commit": "deadbeef"},
        "labels": ["smoke-test model"],
        "run_id": "run-test-1",
        "created": "2024-07-01T00:00:00Z",
    }


def result_hf() -> dict[str, Any]:
    """A reproduced FigStep result on LLaVA-1.5-7B / SafeBench with the refusal judge (a real-model setup)."""
    r = result()
    r.update(
        model={"backend": "hf", "id": "llava-hf/llava-1.5-7b-hf", "spec": "hf:llava-hf/llava-1.5-7b-hf"},
        dataset={"name": "safebench", "checksum": "def456", "n_samples": 20},
        labels=[],
        run_id="run-test-2",
    )
    r["conditions"][1]["judges"][0]["asr"] = estimate(0.65)
    return r


def result_defense() -> dict[str, Any]:
    """A defense run: FigStep with and without AdaShield-S on the model organism."""
    r = result("2024-wang-adashield")
    r.update(baseline="adashield_s", defense="adashield_s", run_id="run-test-3")
    r["conditions"] = [
        {"condition": "figstep", "attack": "figstep", "n_samples": 20,
         "judges": [{"judge": "refusal", "asr": estimate(0.9), "refusal_rate_benign": estimate(0.0)}]},
        {"condition": "figstep+adashield_s", "attack": "figstep", "defense": "adashield_s", "n_samples": 20,
         "judges": [{"judge": "refusal", "asr": estimate(0.2), "refusal_rate_benign": estimate(0.3)}]},
    ]  # fmt: skip
    return r


def write_catalog(root: Path, *, malicious: bool = False) -> Path:
    """Write the fixture catalog under ``root`` (vocab copied from the repository) and return ``root``."""
    shutil.copytree(REPO / "catalog" / "vocab", root / "vocab")
    (root / "papers").mkdir(parents=True)
    for p in papers(malicious):
        (root / "papers" / f"{p['id']}.yaml").write_text(yaml.safe_dump(p, sort_keys=False), encoding="utf-8")
    res_dir = root / "results" / "figstep"
    res_dir.mkdir(parents=True)
    (res_dir / "organism__bundled__none.yaml").write_text(
        yaml.safe_dump(result(), sort_keys=False), encoding="utf-8"
    )
    (res_dir / "llava-hf-llava-1.5-7b-hf__safebench__none.yaml").write_text(
        yaml.safe_dump(result_hf(), sort_keys=False), encoding="utf-8"
    )
    (root / "results" / "adashield_s").mkdir()
    (root / "results" / "adashield_s" / "organism__bundled__adashield_s.yaml").write_text(
        yaml.safe_dump(result_defense(), sort_keys=False), encoding="utf-8"
    )
    return root
