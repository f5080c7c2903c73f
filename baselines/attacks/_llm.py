"""External models of the attacks that consult one (an attacker LLM, a rewriter, a judge inside the loop).

Each such model is a back-end spec the user passes (``--set attacker=openai:gpt-4o-mini``,
``--set attacker=hf:mistralai/Mistral-7B-Instruct-v0.2``, ``organism``), or ``target`` for the attacked model
itself. :class:`Helpers` loads each spec once; :func:`ask` sends text-only turns and turns a failed call into a
:class:`~baselines.base.BackendError` naming the spec and the Params field to change (exit 2 in the CLI), never
a silent fallback. Tests inject stand-ins with :meth:`Helpers.set`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baselines.base import BackendError, Model
from baselines.types import GenerationConfig, Sample


class Helpers:
    """The external models of one attack, by Params field name, loaded on first use."""

    def __init__(self, attack: str) -> None:
        self.attack = attack
        self._models: dict[str, Model] = {}

    def set(self, field: str, model: Model) -> None:
        """Use ``model`` for ``field`` (tests: a scripted stand-in)."""
        self._models[field] = model

    def get(self, field: str, spec: str, target: Model | None = None, base_url: str | None = None) -> Model:
        """The model of ``field``: ``target`` -> the attacked model, else ``load_model(spec)`` once."""
        if field in self._models:
            return self._models[field]
        if spec == "target":
            if target is None:
                raise BackendError(f"{self.attack}: {field}=target but no target model was given")
            return target
        from baselines.models import load_model

        try:
            model = load_model(spec, base_url=base_url)
        except BackendError as e:
            raise BackendError(
                f"{self.attack}: cannot load the {field} model {spec!r} ({e}); pass "
                f"--set {field}=<model spec> (organism, hf:<id or path>, openai:<model> with --set "
                f"{field}_base_url=...)"
            ) from None
        except OSError as e:  # hub offline / not cached
            raise BackendError(
                f"{self.attack}: the {field} model {spec!r} is not available offline ({type(e).__name__}); "
                f"download it first or pass --set {field}=<a local model spec>"
            ) from None
        self._models[field] = model
        return model


def ask(
    attack: str,
    field: str,
    model: Model,
    prompts: Sequence[str],
    *,
    system: str | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> list[str]:
    """One text-only turn per prompt; the answers in order. A failed call raises BackendError."""
    samples = [
        Sample(id=(ids[i] if ids else f"{attack}-{field}-{i}"), text=p, system=system)
        for i, p in enumerate(prompts)
    ]
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    responses = model.generate(samples, config)
    bad = next((r for r in responses if r.error), None)
    if bad is not None:
        raise BackendError(
            f"{attack}: the {field} model failed ({bad.error}); check it or pass --set {field}=<model spec>"
        )
    return [r.text for r in responses]


def model_label(model: Any) -> str:
    """A short name of a model for meta (its info() id, or its class)."""
    try:
        info = model.info()
        return str(info.get("id") or info.get("backend") or type(model).__name__)
    except Exception:  # noqa: BLE001 - meta only
        return type(model).__name__
