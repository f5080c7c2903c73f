"""MM-Vet's grader (``mm-vet_evaluator.py``): an LLM completes the correctness cell (0.0-1.0) of a few-shot table
whose last row is ``question | ground truth | prediction | ``; or, offline, a deterministic match proxy.

``grader=llm``: query = the verbatim prompt (``data/prompts/mmvet_grader.txt``) + ``"\\n"`` + ``" | ".join([
question, answer with " <AND> " / " <OR> " spacing, prediction, ""])``; one user message, text only; the first
space-separated token of the answer must be a float in [0, 1]. ``grader=match`` (proxy, labelled so in the
config): case-insensitive substring match of the ground truth in the prediction, ``<OR>`` any part, ``<AND>`` the
share of parts present. Verdict: ``score`` = correctness, ``success`` = score < 0.5 (mostly wrong),
``refused`` unknown. The utility number is the mean score (``mllm-safety eval mmvet``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from baselines.judges._common import ModelJudge, ModelJudgeParams, unparsed
from baselines.judges._prompts import load_prompt
from baselines.registry import register
from baselines.types import Response, Sample, Verdict


def grader_query(question: str, answer: str, prediction: str) -> str:
    """The exact grader input for one answer."""
    gt = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return load_prompt("mmvet_grader").text + "\n" + " | ".join([question, gt, prediction, ""])


def parse_score(text: str) -> float | None:
    """The first space-separated token as a float in [0, 1], else None."""
    try:
        value = float(text.strip().split(" ")[0])
    except (ValueError, IndexError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def match_score(answer: str, prediction: str) -> float:
    """Deterministic proxy: substring match with MM-Vet's <AND> (share present) / <OR> (any present) marks."""
    pred = prediction.lower()
    if "<AND>" in answer:
        parts = [p.strip().lower() for p in answer.split("<AND>") if p.strip()]
        return sum(p in pred for p in parts) / len(parts) if parts else 0.0
    parts = [p.strip().lower() for p in answer.split("<OR>") if p.strip()]
    return 1.0 if any(p in pred for p in parts) else 0.0


@register("judge")
class MMVetJudge(ModelJudge):
    """MM-Vet's GPT-4 few-shot correctness grader (0.0-1.0), or a deterministic match proxy offline."""

    paper_id = None  # MM-Vet (arXiv 2308.02490) is a utility benchmark, not in the catalog
    summary = (
        "MM-Vet grader: verbatim few-shot table, score 0-1 (grader=llm), or substring-match proxy (match)"
    )
    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "unparsable grader answers",
            "official": "re-asked up to 5 times with temperature +0.5 each, then scored 0.0",
            "ours": "unjudged verdict, counted (one greedy ask)",
            "why": "sampled retries are not reproducible",
            "effect": "score over parsed answers only",
        },
        {
            "what": "runs",
            "official": "num_run=1 by default (5 in the paper, mean and std)",
            "ours": "one run",
            "why": "greedy grader",
            "effect": "no std across grader runs",
        },
    ]

    class Params(ModelJudgeParams):
        """Grader kind, model and answer length (official: gpt-4-0613, max_tokens 3, temperature 0)."""

        grader: Literal["llm", "match"] = Field(
            "llm", description="llm: the official grader; match: offline proxy"
        )
        model: str = Field("openai:gpt-4-0613", description="grader model (grader=llm)")
        max_new_tokens: int = Field(3, ge=1, description="grader answer length")

    def decide(self, samples: list[Sample], responses: list[Response]) -> list[Verdict]:
        """Scores for every pair (one batched grader call, or the match rule)."""
        answers = [str(s.meta.get("answer", "")) for s in samples]
        if self.params.grader == "match":
            scores = [match_score(a, r.text) for a, r in zip(answers, responses, strict=True)]
            return [Verdict(self.name, sc < 0.5, score=sc, reason="match proxy") for sc in scores]
        queries = [
            Sample(id=s.id, text=grader_query(s.goal, a, r.text), label=s.label)
            for s, a, r in zip(samples, answers, responses, strict=True)
        ]
        out = []
        for ans in self.generate(queries, self.params.max_new_tokens):
            score = None if ans.error is not None else parse_score(ans.text)
            if ans.error is not None:
                out.append(Verdict(self.name, None, error=ans.error))
            elif score is None:
                out.append(unparsed(self.name, "MM-Vet correctness score", ans.text))
            else:
                out.append(Verdict(self.name, score < 0.5, score=score, reason="grader"))
        return out

    def config(self) -> dict[str, Any]:
        """Params and the prompt's sha256."""
        return {**super().config(), "prompt_sha256": load_prompt("mmvet_grader").sha256}
