"""What the model-based judges share: the judge model (named by a spec or injected), fail-closed verdicts.

A :class:`ModelJudge` loads its model lazily from ``Params.model`` (``hf:<id or path>``, a bare hub id or path
meaning ``hf:``, ``openai:<model>`` with ``base_url``, or ``organism``), or takes one injected through the
constructor (tests, ``judges validate`` with a model already loaded). A failed response, a back-end error and an
answer that fits none of the judge's labels are *unjudged* verdicts (``success=None`` with an error saying
which); nothing ever falls back to another rule. A model that cannot be loaded is tried once; later batches get
the same error without trying again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from baselines.base import Judge, Model
from baselines.params import StrictParams
from baselines.types import GenerationConfig, Response, Sample, Verdict

SPEC_PREFIXES = ("hf:", "openai:", "organism")


class ModelJudgeParams(StrictParams):
    """The judge model and its back-end (fields every model-based judge has)."""

    model: str = Field(
        description="judge model: hf:<id or path> (a bare id/path means hf:), openai:<model>, organism"
    )
    base_url: str | None = Field(None, description="endpoint of an openai:<model> judge")
    model_params: dict[str, Any] = Field(
        default_factory=dict, description="extra Params of the judge's back-end (e.g. dtype, batch_size)"
    )


def normalise_spec(spec: str) -> str:
    """``spec`` with ``hf:`` added when it is a bare hub id or path."""
    spec = spec.strip()
    return spec if spec.startswith(SPEC_PREFIXES) else f"hf:{spec}"


def snippet(text: str, n: int = 80) -> str:
    """The start of ``text`` on one line (for error messages; never a full judge output)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def unparsed(judge: str, what: str, text: str) -> Verdict:
    """The unjudged verdict of an answer that fits none of the judge's labels."""
    return Verdict(judge, None, error=f"unparseable {what}: {snippet(text)!r}")


def greedy(max_new_tokens: int) -> GenerationConfig:
    """Deterministic decoding with ``max_new_tokens``."""
    return GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)


class ModelJudge(Judge):
    """A judge whose decisions come from a model: lazy loading, failed responses unjudged, length check."""

    judges_prompts: bool = True  # whether an unparseable model answer is possible (documentation only)

    def __init__(self, params: BaseModel | dict[str, Any] | None = None, *, model: Any = None) -> None:
        super().__init__(params)
        self._model = model
        self._load_error: Exception | None = None

    def load_judge_model(self, spec: str) -> Any:
        """Build the model named by ``spec`` (overridden by judges with special back-ends)."""
        from baselines.models import load_model

        return load_model(spec, base_url=self.params.base_url, params=dict(self.params.model_params))

    def judge_model(self) -> Any:
        """The judge model, loaded on first use (a failed load is remembered and raised again)."""
        if self._model is None:
            if self._load_error is not None:
                raise self._load_error
            try:
                self._model = self.load_judge_model(normalise_spec(self.params.model))
            except Exception as e:
                self._load_error = e
                raise
        return self._model

    def judge(self, samples: Sequence[Sample], responses: Sequence[Response]) -> list[Verdict]:
        """One verdict per pair; a failed response is unjudged without asking the judge model."""
        if len(samples) != len(responses):
            raise ValueError(f"judge got {len(samples)} samples but {len(responses)} responses")
        out: list[Verdict | None] = [None] * len(samples)
        todo = []
        for i, resp in enumerate(responses):
            if resp.error is not None and self.needs_response():
                out[i] = Verdict(self.name, None, error=f"no response to judge: {resp.error}")
            else:
                todo.append(i)
        if todo:
            got = self.decide([samples[i] for i in todo], [responses[i] for i in todo])
            if len(got) != len(todo):
                raise RuntimeError(f"judge {self.name!r} decided {len(got)} of {len(todo)} pairs")
            for i, v in zip(todo, got, strict=True):
                out[i] = v
        return [v for v in out if v is not None]

    def needs_response(self) -> bool:
        """Whether a pair without a response cannot be judged (False for prompt/image classifiers)."""
        return True

    def decide(self, samples: list[Sample], responses: list[Response]) -> list[Verdict]:  # pragma: no cover
        """Verdicts for pairs whose response did not fail (one per pair, in order)."""
        raise NotImplementedError

    def generate(self, queries: list[Sample], max_new_tokens: int) -> list[Response]:
        """One batched greedy generate call of the judge model; a back-end failure gives error answers."""
        from baselines.judges._prompts import generate_all

        if not queries:
            return []
        try:
            model = self.judge_model()
        except Exception as e:  # noqa: BLE001 - a model that cannot load leaves the batch unjudged
            err = f"judge model error: {type(e).__name__}: {str(e)[:300]}"
            return [Response(q.id, "", error=err) for q in queries]
        return generate_all(model, queries, greedy(max_new_tokens), "judge model")

    def model_info(self) -> dict[str, Any]:
        """Provenance of a loaded judge model (empty before it is loaded)."""
        m = self._model
        return dict(m.info()) if isinstance(m, Model) else {}
