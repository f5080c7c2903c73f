"""RunConfig: everything that defines a run, validated, with every component's Params resolved.

Built from a person's choices by :func:`baselines.runrequest.RunRequest.config` (``build_run_config`` here
is its keyword form), or re-validated from a result's recorded ``config`` by ``RunConfig.model_validate``,
which first migrates configs recorded by older versions (:func:`migrate_config`). Its hash names the run
directory, so the same command resumes the same run. Only light imports here (the registry imports
component modules, which keep torch inside functions).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from baselines import registry
from baselines.params import StrictParams
from baselines.registry import UnknownComponentError


class RunConfigError(ValueError):
    """A run cannot be configured as asked (bad --set, bad --shard, judge/defense mismatch)."""


class ComponentSpec(StrictParams):
    """A registry name plus its validated, fully resolved Params (defaults included)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class GenerationSettings(StrictParams):
    """Decoding settings recorded with the run (mirrors baselines.types.GenerationConfig)."""

    max_new_tokens: int = Field(128, gt=0, description="most tokens generated per answer")
    temperature: float = Field(0.0, ge=0, description="sampling temperature (0 = greedy)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    seed: int = Field(0, description="generation and bootstrap seed")


class Condition(StrictParams):
    """One condition of a run: its name ('text-only', 'figstep', 'figstep+ecso'), attack and defense."""

    name: str
    attack: str | None = None
    defense: str | None = None


class RunConfig(StrictParams):
    """The full, validated configuration of a run (recorded in the Result; enough to rerun it)."""

    baseline: str
    baseline_kind: Literal["attack", "defense", "eval"]  # eval: a benchmark alone (`mllm-safety eval`)
    attack: ComponentSpec | None = Field(
        None, description="the baseline attack, or a defense's evaluation attack"
    )
    defense: ComponentSpec | None = None
    model: str = Field("organism", description="organism | hf:<id or path>[@rev] | openai:<model>")
    model_params: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None
    dataset: ComponentSpec
    judges: list[ComponentSpec]
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    batch_size: int = Field(8, gt=0, description="samples per model.generate call")
    limit: int | None = Field(None, gt=0, description="only the first N samples")
    shard: tuple[int, int] | None = Field(
        None, description="(i, n): this run holds partition i of n (0-based)"
    )
    conditions: list[Condition]

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        return migrate_config(data)

    def hash(self, *, without_shard: bool = False) -> str:
        """SHA-256 of the canonical JSON of what determines the results (batch sizes excluded; credentials in
        URLs left out, so that no hash is derived from a password)."""
        from baselines.http import redact_urls

        data = redact_urls(self.model_dump(mode="json", exclude={"batch_size"}))
        data["model_params"].pop("batch_size", None)
        data["model_params"].pop("device", None)  # where it runs (--device cuda:i), not what it computes
        if without_shard:
            data["shard"] = None
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def run_id(self, *, without_shard: bool = False) -> str:
        """Directory name of the run: baseline, model, dataset, defense, config hash (and shard)."""
        model_slug = re.sub(r"[^A-Za-z0-9]+", "-", self.model).strip("-").lower() or "model"
        parts = [self.baseline, model_slug[:60], self.dataset.name]
        if self.baseline_kind == "attack" and self.defense:
            parts.append(self.defense.name)
        parts.append(self.hash(without_shard=True)[:12])
        if self.shard and not without_shard:
            parts.append(f"shard{self.shard[0]}of{self.shard[1]}")
        return "__".join(parts)

    def generation_config(self):  # -> GenerationConfig
        """The baselines.types.GenerationConfig for model.generate."""
        from baselines.types import GenerationConfig

        return GenerationConfig(**self.generation.model_dump())


def default_attack(defense: str) -> str | None:
    """The attack a registered defense's paper evaluates it against (its ``default_attack`` class attribute)."""
    return getattr(registry.get("defense", defense), "default_attack", None)


def migrate_config(data: Any) -> Any:
    """A recorded config in today's shape (a copy; ``data`` untouched when nothing changes).

    Before the evaluation attack moved into the run config (``RunConfig.attack``, ``--attack``), every defense's
    Params had an ``attack`` field, and AdaShield-A's ``train_attack: null`` meant "that field". The field is
    dropped, and a null ``train_attack`` is set to the attack it meant, unless the defense's default now means
    the same; so an old result reruns exactly as it ran (its config hash, hence run id, changes)."""
    defense = data.get("defense") if isinstance(data, dict) else None
    params = defense.get("params") if isinstance(defense, dict) else None
    if not isinstance(params, dict) or "attack" not in params:
        return data
    try:
        cls = registry.get("defense", str(defense.get("name")))
    except UnknownComponentError:
        return data  # reported when the run loads its components
    if "attack" in cls.Params.model_fields:
        return data
    data = copy.deepcopy(data)
    params = data["defense"]["params"]
    old = params.pop("attack")
    own_run = data.get("baseline_kind") == "defense"
    if "train_attack" in params and params["train_attack"] is None:
        if own_run or old != getattr(cls, "default_attack", None):
            params["train_attack"] = old
    return data


def build_run_config(baseline: str, **choices: Any) -> RunConfig:
    """The RunConfig of ``baseline`` with the CLI-level ``choices`` (see :class:`baselines.runrequest.RunRequest`
    for their names and defaults); unknown names and bad --set raise clear errors."""
    from baselines.runrequest import RunRequest

    return RunRequest(baseline=baseline, **{k: v for k, v in choices.items() if v is not None}).config()
