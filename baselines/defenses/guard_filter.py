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

The guard family (:data:`GUARDS`, spec 23-guards-judges.md): ``llamaguard`` (Llama Guard 3 Vision; Llama Guard 4
with ``policy=llamaguard4``) and ``guardreasoner_vl`` classify the request on the input stage
(``classify=prompt``) and the answer on the output stage (``classify=response``), so ``stage=both`` runs two
guard judges over one loaded guard model; ``llavaguard`` and ``shieldgemma2`` rate the *image*, so they guard the
input only (another stage exits 2), and a request without an image is undecided (``on_error``). A guard whose
model cannot be loaded stops the run when the model is wrapped (exit 2 naming it), instead of letting every
answer through as undecided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from baselines import registry
from baselines.base import BackendError, Defense, Judge, Model
from baselines.defenses._wrapper import WrappedModel, refusal_response, with_meta
from baselines.params import ParamsError, StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample, Verdict

#: The guard-model judges: for each, the stages it can check and the judge Params each stage needs.
GUARDS: dict[str, dict[str, dict[str, Any]]] = {
    "llamaguard": {"input": {"classify": "prompt"}, "output": {"classify": "response"}},
    "guardreasoner_vl": {"input": {"classify": "prompt"}, "output": {"classify": "response"}},
    "llavaguard": {"input": {}},  # rates the image the model is shown
    "shieldgemma2": {"input": {}},  # P(violation) of the image per policy
}


@register("defense")
class GuardFilter(Defense):
    """Refuse requests or answers that a guard judge flags as unsafe."""

    paper_id = None
    summary = "Input/output filter over any guard judge (e.g. llamaguard); flagged => fixed refusal"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = []  # none: a project construction, no official code

    class Params(StrictParams):
        """Which judge guards which stage."""

        judge: str = Field("llm", description="registered judge used as the guard (e.g. llamaguard, llm)")
        judge_params: dict[str, Any] | None = Field(
            None,
            description="Params of the guard judge (None: llm -> the JailbreakBench prompt, others -> "
            "their defaults); llm without `model` uses the protected model itself",
        )
        stage: Literal["output", "input", "both"] = Field("output", description="what the guard checks")
        on_error: Literal["pass", "refuse"] = Field("pass", description="what an undecided verdict does")
        refusal: str = Field(
            "I'm sorry, but I cannot assist with that request.", description="answer when flagged"
        )

        @model_validator(mode="after")
        def _default_judge_params(self) -> GuardFilter.Params:
            """The judge's default Params: the llm judge's JailbreakBench prompt (the committed result's)."""
            if self.judge_params is None:
                self.judge_params = {"prompt": "jailbreakbench"} if self.judge == "llm" else {}
            return self

    def __init__(self, params: Any = None, *, guard_model: Model | None = None) -> None:
        super().__init__(params)
        self.guard_model = guard_model  # injected guard back-end (tests); else the judge loads its own
        guard = GUARDS.get(self.params.judge)
        stages = ("input", "output") if self.params.stage == "both" else (self.params.stage,)
        if guard is not None and any(st not in guard for st in stages):
            raise ParamsError(
                f"guard_filter: judge {self.params.judge!r} checks the {'/'.join(guard)} stage only "
                f"(it rates the image); use stage={next(iter(guard))}"
            )

    def make_judge(self, model: Model, stage: str = "output") -> Judge:
        """The guard judge of ``stage``; an ``llm`` judge without a ``model`` param is answered by ``model``.
        A guard-family judge gets the Params its stage needs (``GUARDS``) over ``judge_params``."""
        cls = registry.get("judge", self.params.judge)
        params = dict(self.params.judge_params)
        params.update(GUARDS.get(self.params.judge, {}).get(stage, {}))
        if self.params.judge == "llm" and not params.get("model"):
            return cls(params, model=model)
        if self.guard_model is not None:
            return cls(params, model=self.guard_model)
        return cls(params)

    def wrap(self, model: Model) -> Model:
        """The model behind the guard (a guard-family judge's model is loaded now: exit 2 if it cannot be)."""
        stages = ("input", "output") if self.params.stage == "both" else (self.params.stage,)
        judges = {st: self.make_judge(model, st) for st in stages}
        if self.params.judge in GUARDS:
            first = judges[stages[0]]
            loaded = _load_guard(self.params.judge, first)
            for j in judges.values():  # one guard model for both stages
                j._model = loaded  # noqa: SLF001 - the judges' lazily loaded model slot
        return _GuardModel(model, self, judges)


def _load_guard(name: str, judge: Judge) -> Any:
    """The guard judge's model, loaded now; a failure says what the guard needs (BackendError: exit 2)."""
    loader = getattr(judge, "judge_model", None) or getattr(judge, "_guard_model", None)
    try:
        return loader() if loader is not None else None
    except Exception as e:  # noqa: BLE001 - any load failure is the user's to fix
        raise BackendError(
            f"guard_filter: the {name!r} guard cannot load its model ({type(e).__name__}: {str(e)[:300]}); "
            f'name one with --set \'judge_params={{"model": "hf:<id or local path>"}}\''
        ) from e


class _GuardModel(WrappedModel):
    def __init__(self, inner: Model, defense: Defense, judges: dict[str, Judge]) -> None:
        super().__init__(inner, defense)
        self.judges = judges
        self.judge = judges.get("output") or judges["input"]

    def info(self) -> dict[str, Any]:
        """The inner model's info plus the guard judge's configuration (per stage when they differ)."""
        info = super().info()
        info["defenses"][-1]["judge"] = self.judge.config()
        if len(self.judges) > 1:
            info["defenses"][-1]["judges"] = {st: j.config() for st, j in self.judges.items()}
        return info

    def _flagged(self, v: Verdict) -> bool:
        return v.success is True or (v.success is None and self.params.on_error == "refuse")

    @staticmethod
    def _meta(stage: str, v: Verdict, flagged: bool) -> dict[str, Any]:
        return {
            "stage": stage,
            "flagged": flagged,
            "undecided": v.success is None,  # counted in the result's decisions: a guard that cannot answer
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
            verdicts = self.judges["input"].judge(
                samples, [Response(sample_id=s.id, text="") for s in samples]
            )
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
            verdicts = self.judges["output"].judge([samples[i] for i in todo], answers)
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
