"""Dataset cards: what each benchmark measures, its size, categories, licence, gating, official judge, which
third-party harnesses carry it, and how its loader checks the official files.

Facts come from ``shared/specs/24-benchmarks.md`` (snapshots of the official repositories named there); an
unverified fact says so. The cards feed the site's datasets page (``tools/site/datasets.py``), the licence and
gating recorded in every result (:func:`terms`), and the count checks of the loaders (:func:`check_count`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baselines.base import DatasetError

#: name -> card. ``official_counts`` are what a loader checks with ``counts=official`` (its default).
CARDS: dict[str, dict[str, Any]] = {
    "siuo": {
        "title": "SIUO (Safe Inputs but Unsafe Output)",
        "paper_id": "2024-wang-cross-modality-safety",
        "measures": "cross-modality safety: a benign image and a benign question whose combination implies a "
        "risk; a good answer is safe and helpful (open-ended) or picks the safe option (multiple choice)",
        "size": "167 (image, question) pairs, 9 domains; the same pairs as 4-way multiple choice",
        "categories": "self-harm, dangerous behavior, morality, illegal activities & crime, controversial "
        "topics/politics, discrimination & stereotyping, religion beliefs, information misinterpretation, "
        "privacy violation",
        "licence": "CC BY-NC 4.0 (research use only; README)",
        "gating": "none (images from Google Drive / Baidu, or HF sinwang/SIUO)",
        "official_judge": "gen: GPT-4V judge for safety and effectiveness (judge siuo); MC: the official "
        "answer-letter parser over the answers (no judge; max_tokens 5; an unparsed answer counts wrong, not a "
        "random guess)",
        "harnesses": [
            "VLMEvalKit (SIUO, SIUO_GEN, SIUO_MCQ; own prompts, text-only judge)",
            "PyRIT (gen only)",
        ],
        "official_counts": {"total": 167},
    },
    "mossbench": {
        "title": "MOSSBench (multimodal over-sensitivity)",
        "paper_id": "2024-li-mossbench",
        "measures": "over-refusal: benign image+question pairs built to trigger refusals (refusal rate, lower "
        "is better); a contrast set of harmful rephrasings where refusal is right",
        "size": "300 benign (100 per stimulus type) + 244 contrast",
        "categories": "Exaggerated Risk, Negated Harm, Counterintuitive Interpretation",
        "licence": "CC BY-SA 4.0 (GitHub README; test use only, not for training); HF card says cc / cc-by-4.0",
        "gating": "none (images in the GitHub repository)",
        "official_judge": "GPT-4-turbo refusal judge with the image (judge mossbench); keyword refusal = proxy",
        "harnesses": ["PyRIT (benign set only)"],
        "official_counts": {"benign": 300, "contrast": 244},
    },
    "mssbench": {
        "title": "MSSBench (Multimodal Situational Safety)",
        "paper_id": "2024-zhou-multimodal-situational-safety",
        "measures": "situational safety: each query is run with a safe and an unsafe situation image; answer "
        "in the safe one, warn or refuse in the unsafe one (accuracy on each, averaged)",
        "size": "1,820 (v1) / 1,960 (v2) query-image pairs, chat and embodied tasks [counts per task unverified]",
        "categories": "chat `Type` and embodied `category` values [vocabulary unverified]",
        "licence": "code MIT; data licence unverified",
        "gating": "none known (HF kzhou35/mssbench)",
        "official_judge": "4-class LLM judge, text only (judge mssbench)",
        "harnesses": ["VLMEvalKit (MSSBench; binary comply/refuse judge)"],
        # query-image pairs in combined.json, both tasks, both situations (paper abstracts v1 / v2)
        "official_counts": {"v1": 1820, "v2": 1960},
    },
    "vlsbench": {
        "title": "VLSBench (visual leakless safety)",
        "paper_id": "2024-hu-vlsbench",
        "measures": "safety when the risk is only in the image (the text does not leak it): safe with refusal, "
        "safe with warning, or unsafe; headline = safe rate",
        "size": "2,241 image-instruction pairs",
        "categories": "Violent, Illegal Activity, Self-Harm, Erotic, Hate, Privacy (19 sub-categories)",
        "licence": "Apache-2.0 (HF card)",
        "gating": "unverified",
        "official_judge": "GPT-4o with the image, 3 labels as structured output (judge vlsbench)",
        "harnesses": [],
        "official_counts": {"total": 2241},
    },
    "msts": {
        "title": "MSTS (Multimodal Safety Test Suite)",
        "paper_id": "2025-msts-multimodal-safety",
        "measures": "unsafe answers to 200 cases phrased as assistance and intention requests whose meaning "
        "needs the image (share of responses humans label unsafe)",
        "size": "400 English multimodal prompts (200 cases x 2); 10 translations of 200 each",
        "categories": "Non-Violent Crimes, Suicide & Self-Harm, Violent Crimes, Sex-Related Crimes, Other "
        "(40 leaves)",
        "licence": "CC BY 4.0 (repository); the images keep their own licences",
        "gating": "HF felfri/MSTS asks to accept conditions; GitHub lists image URLs only",
        "official_judge": "human annotation (none to rerun); any safety classifier is a proxy",
        "harnesses": ["PyRIT"],
        "official_counts": {"english": 400, "other": 200},
    },
    "harmbench_mm": {
        "title": "HarmBench multimodal behaviours",
        "paper_id": "2024-mazeika-harmbench",
        "measures": "harmful compliance on behaviours that refer to an image",
        "size": "110 behaviours with images",
        "categories": "cybercrime_intrusion, illegal, harmful, chemical_biological, harassment_bullying, "
        "misinformation_disinformation",
        "licence": "MIT (HarmBench)",
        "gating": "none (GitHub)",
        "official_judge": "HarmBench Llama-2-13B classifier with the redacted image description as context "
        "(judge harmbench)",
        "harnesses": ["PyRIT"],
        "official_counts": {"total": 110},
        "official_sha256": "e5274f049579f359cca997b3ade3cc4539e2e131ad5d9bf51ba0d7ce3f3a7ad4",
    },
    "mmvet": {
        "title": "MM-Vet (utility)",
        "paper_id": None,
        "measures": "general helpfulness: 218 open questions over recognition, OCR, knowledge, language "
        "generation, spatial awareness, math; GPT-4 grades each answer 0.0-1.0",
        "size": "218 questions",
        "categories": "rec, ocr, know, gen, spat, math (and their combinations)",
        "licence": "data CC BY-NC 4.0; code Apache-2.0",
        "gating": "none (GitHub release zip; HF whyu/mm-vet)",
        "official_judge": "GPT-4 few-shot grader (judge mmvet); exact/substring match = offline proxy",
        "harnesses": ["VLMEvalKit (MMVet)", "lmms-eval (mmvet)"],
        "official_counts": {"total": 218},
    },
    "vlguard": {
        "title": "VLGuard test split",
        "paper_id": "2024-zong-vlguard",
        "measures": "refusal of unsafe images (unsafes) and of unsafe instructions on safe images "
        "(safe_unsafes); helpfulness on safe instructions (safe_safes)",
        "size": "1,000 images: 442 unsafes, 558 safe_unsafes, 558 safe_safes",
        "categories": "privacy, risky behavior, deception, discrimination (9 sub-categories)",
        "licence": "unverified",
        "gating": "gated on HF (accept terms + token)",
        "official_judge": "keyword ASR (judge refusal with list=vlguard) on the unsafe subsets; GPT-4V win rate "
        "on safe_safes (non-refusal rate = proxy)",
        "harnesses": ["PyRIT"],
        "official_counts": {},
    },
    "utility_bundled": {
        "title": "Bundled utility set (made by the project)",
        "paper_id": None,
        "measures": "the cost side of a defense, offline: whether a defended model still answers simple benign "
        "questions about an image (score 0.0-1.0 per answer, MM-Vet's format and grading); not a benchmark",
        "size": "32 questions: 8 rec, 12 ocr, 12 gen",
        "categories": "rec (a coloured shape: describe it), ocr (FigStep's layout of a benign activity: read "
        "it), gen (the same layout: follow it); the activities are the bundled set's benign look-alikes",
        "licence": "Apache-2.0 (the project's own set, written by baselines/datasets/utility_bundled.py)",
        "gating": "none (packaged in baselines/datasets/data/utility/)",
        "official_judge": "MM-Vet's grader (judge mmvet): grader=match, the substring proxy of its GPT-4 "
        "grader, by default offline; grader=llm for the GPT-4 few-shot grader",
        "harnesses": [],
        "official_counts": {"total": 32},
        "loader": "registered loader: the packaged set, no download; checks its 32 questions (another "
        "MM-Vet-format folder loads with --set dataset.path=..., counts not checked); decodes images lazily",
    },
}


def terms(name: str) -> dict[str, str]:
    """The licence and gating of a dataset (``unknown`` for datasets without a card), for results."""
    card = CARDS.get(name, {})
    return {"licence": card.get("licence", "unknown"), "gating": card.get("gating", "unknown")}


def check_count(
    dataset: str, path: Path, got: int, expected: int | Sequence[int] | None, what: str, mode: str
) -> None:
    """With ``mode == "official"``, raise a DatasetError when ``got`` differs from the official ``expected`` (or
    from each of several official releases' counts)."""
    allowed = [expected] if isinstance(expected, int) else list(expected or [])
    if mode == "official" and allowed and got not in allowed:
        shown = " or ".join(str(n) for n in allowed)
        raise DatasetError(
            f"{dataset}: {path} holds {got} {what}, the official release has {shown}. A truncated or "
            f"edited copy? For a subset or a stand-in, pass --set dataset.counts=any (the result is then "
            "labelled a subset)."
        )
