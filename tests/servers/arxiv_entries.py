"""Entries served by tests/servers/arxiv_server.py (invented papers with realistic arXiv metadata).

Titles, names and abstracts carry what real arXiv records carry: line breaks inside titles, LaTeX accents and
math, Unicode names, URLs in comments and abstracts, a journal reference, a withdrawn paper. Two entries
duplicate papers of ``tests/fixtures/catalog`` (FigStep by arXiv id, AdaShield by a near-identical title).
"""

from __future__ import annotations

from typing import Any

LATEX_ID = "2405.01234"
DEFENSE_ID = "2406.00002"
BENCH_ID = "2406.00003"
WITHDRAWN_ID = "2406.00004"
OFFTOPIC_ID = "2406.00005"
NEAR_DUP_ID = "2406.00006"
OLD_ID = "2301.00007"

ENTRIES: list[dict[str, Any]] = [
    {
        "id": "2311.05608",
        "version": 3,
        "published": "2023-11-09",
        "updated": "2025-01-20",
        "title": "FigStep: Jailbreaking Large Vision-language Models via Typographic Visual\n  Prompts",
        "authors": ["Yichen Gong", "Delong Ran", "Jinyuan Liu"],
        "summary": "Large vision-language models are vulnerable to a jailbreak with typographic images.",
        "comment": "AAAI 2025 (Oral)",
        "categories": ["cs.CR", "cs.CL"],
    },
    {
        "id": LATEX_ID,
        "version": 3,
        "published": "2024-05-02",
        "updated": "2024-07-01",
        "title": "$\\alpha$-Jailbreak: Breaking the Safety of\n  Vision-Language Models with \\'El\\'egant\n  Typographic Images",
        "authors": ["Jos\\'e Garc{\\'\\i}a", "Zoë Müller", "{\\L}ukasz Nowak", "Søren Kierkegaard"],
        "summary": "Multimodal large language models (MLLMs) can be jailbroken: we propose $\\alpha$-Jailbreak,\n"
        "a black-box jailbreak attack that renders harmful instructions as typographic images\n"
        "and raises the attack success rate on LLaVA by 40\\%. Code is available at\n"
        "https://github.com/example-lab/alpha-jailbreak.",
        "comment": "Accepted to ECCV 2024. 18 pages, 7 figures. Project page: https://example-lab.github.io/alpha/",
        "categories": ["cs.CV", "cs.CL"],
    },
    {
        "id": DEFENSE_ID,
        "published": "2024-06-03",
        "title": "ShieldVLM: Defending Multimodal Large Language Models against Jailbreak Attacks at Inference Time",
        "authors": ["Mei Chen", "Arjun Rao"],
        "summary": "We propose ShieldVLM, a training-free defense that protects vision-language models from\n"
        "jailbreak attacks by detecting harmful images and steering the decoding towards safe refusals.",
        "comment": "NeurIPS 2024 camera-ready",
        "categories": ["cs.CV"],
    },
    {
        "id": BENCH_ID,
        "published": "2024-06-04",
        "title": "SafeBench-V: A Benchmark for Evaluating the Safety of Vision-Language Models",
        "authors": ["Ana Souza"],
        "summary": "We introduce SafeBench-V, a benchmark of 3,000 image-text pairs for evaluating the safety of\n"
        "vision-language models across hate speech, privacy and self-harm, and the jailbreak robustness\n"
        "of 12 models.",
        "journal_ref": "Transactions on Machine Learning Research (2025)",
        "doi": "10.0000/tmlr.2025.001",
        "categories": ["cs.CL"],
    },
    {
        "id": WITHDRAWN_ID,
        "version": 2,
        "published": "2024-06-05",
        "title": "A Universal Jailbreak of Multimodal Models",
        "authors": ["Sam Withdrawn"],
        "summary": "This paper has been withdrawn by the authors.",
        "comment": "This paper has been withdrawn by the author due to an error in the experiments",
        "categories": ["cs.CV"],
    },
    {
        "id": OFFTOPIC_ID,
        "published": "2024-06-06",
        "title": "Detecting Jailbreak Tweaks on Smartphones",
        "authors": ["Lee Park"],
        "summary": "We detect jailbreak tweaks installed on iOS phones from system call traces.",
        "categories": ["cs.CR"],
    },
    {
        "id": NEAR_DUP_ID,
        "published": "2024-06-07",
        "title": "AdaShield: Safeguarding Multimodal Large Language Models from Structure-Based Attacks via "
        "Adaptive Shield Prompting",
        "authors": ["Yu Wang"],
        "summary": "A defense against structure-based jailbreak attacks on multimodal large language models.",
        "categories": ["cs.CR"],
    },
    {
        "id": OLD_ID,
        "published": "2023-01-10",
        "title": "An Early Jailbreak of Vision-Language Models",
        "authors": ["Old Author"],
        "summary": "A jailbreak of vision-language models with adversarial images.",
        "categories": ["cs.CV"],
    },
]


def paging_entries(n: int) -> list[dict[str, Any]]:
    """``n`` distinct matching papers (one a day from 2024-03-01, newest last) for paging tests."""
    return [
        {
            "id": f"2403.{10000 + i}",
            "published": f"2024-03-{1 + i:02d}",
            "title": f"Jailbreak Study Number {i} of Vision-Language Models",
            "authors": [f"Author {i}"],
            "summary": f"Study {i} of jailbreak attacks on multimodal models.",
            "categories": ["cs.CV"],
        }
        for i in range(n)
    ]
