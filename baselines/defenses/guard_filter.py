"""An input and/or output filter built on any registered guard judge (no catalogued paper).

Output stage (default, as the Llama Guard 3 Vision card recommends for image tasks, BASELINES.md §14): the
model answers, the judge classifies each (request, answer) pair, and a flagged answer (``Verdict.success`` True,
i.e. unsafe) is replaced by ``refusal``. Input stage: the judge sees each request with an empty answer (use a
judge that can classify prompts, e.g. Llama Guard's prompt mode); flagged requests never reach the model.
A judge that cannot decide (``success`` None) lets the answer through (``on_error="pass"``, default) or blocks
it (``"refuse"``); either way ``Response.meta["guard_filter"]`` records the verdict and any error.

Default guard: the ``llm`` judge with the JailbreakBench judge prompt, answered by the protected model itself
when ``judge_params`` names no ``model`` (a self-check that runs offline); for Llama Guard 3 Vision set
``judge=llamaguard`` and its ``model`` in ``judge_params``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from baselines import registry
from baselines.base import Defense, Judge, Model
from baselines.defenses._wrapper import WrappedModel, refusal_response, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample, Verdict


@register("defense")
class GuardFilter(Defense):
    """Refuse requests or answers that a guard judge flags as unsafe."""

    paper_id = None
    summary = "Input/output filter over any guard judge (e.g. llamaguard); flagged => fixed refusal"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    class Params(StrictParams):
        """Which judge guards which stage."""

        judge: str = Field("llm", description="registered judge used as the guard (e.g. llamaguard, llm)")
        judge_params: dict[str, Any] = Field(
            default_factory=lambda: {"prompt": "jailbreakbench"},
            description="Params of the guard judge; llm without `model` uses the protected model itself",
        )
        stage: Literal["output", "input", "both"] = Field("output", description="what the guard checks")
        on_error: Literal["pass", "refuse"] = Field("pass", description="what an undecided verdict does")
        refusal: str = Field(
            "I'm sorry, but I cannot assist with that request.", description="answer when flagged"
        )

    def make_judge(self, model: Model) -> Judge:
        """The guard judge; an ``llm`` judge without a ``model`` param is answered by ``model``."""
        cls = registry.get("judge", self.params.judge)
        params = dict(self.params.judge_params)
        if self.params.judge == "llm" and not params.get("model"):
            return cls(params, model=model)
        return cls(params)

    def wrap(self, model: Model) -> Model:
        """The model behind the guard."""
        return _GuardModel(model, self, self.make_judge(model))


class _GuardModel(WrappedModel):
    def __init__(self, inner: Model, defense: Defense, judge: Judge) -> None:
        super().__init__(inner, defense)
        self.judge = judge

    def info(self) -> dict[str, Any]:
        """The inner model's info plus the guard judge's configuration."""
        info = super().info()
        info["defenses"][-1]["judge"] = self.judge.config()
        return info

    def _flagged(self, v: Verdict) -> bool:
        return v.success is True or (v.success is None and self.params.on_error == "refuse")

    @staticmethod
    def _meta(stage: str, v: Verdict, flagged: bool) -> dict[str, Any]:
        return {
            "stage": stage,
            "flagged": flagged,
            "verdict": v.success,
            "reason": v.reason,
            "error": v.error,
        }

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Input check (optional), one batched model call for what passes, output check (optional)."""
        p = self.params
        out: list[Response | None] = [None] * len(samples)
        todo = list(range(len(samples)))
        input_meta: dict[int, dict] = {}
        if p.stage in ("input", "both"):
            verdicts = self.judge.judge(samples, [Response(sample_id=s.id, text="") for s in samples])
            todo = []
            for i, v in enumerate(verdicts):
                flagged = self._flagged(v)
                input_meta[i] = self._meta("input", v, flagged)
                if flagged:
                    out[i] = refusal_response(samples[i], p.refusal, "guard_filter", {"input": input_meta[i]})
                else:
                    todo.append(i)
        answers = self.inner.generate([samples[i] for i in todo], config) if todo else []
        if p.stage in ("output", "both") and todo:
            verdicts = self.judge.judge([samples[i] for i in todo], answers)
        else:
            verdicts = [None] * len(todo)
        for i, ans, v in zip(todo, answers, verdicts, strict=True):
            meta = {"input": input_meta[i]} if i in input_meta else {}
            if v is not None:
                flagged = ans.error is None and self._flagged(v)
                meta["output"] = self._meta("output", v, flagged)
                if flagged:
                    out[i] = refusal_response(samples[i], p.refusal, "guard_filter", meta)
                    continue
            out[i] = with_meta(ans, "guard_filter", meta)
        return [r for r in out if r is not None]
