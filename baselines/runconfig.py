"""RunConfig: everything that defines a run, validated, with every component's Params resolved.

Built from CLI arguments by :func:`build_run_config` (or re-validated from a result's recorded ``config``
by ``RunConfig.model_validate``). Its hash names the run directory, so the same command resumes the same
run. Only light imports here (the registry imports component modules, which keep torch inside functions).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field

from baselines import registry
from baselines.base import build_params
from baselines.params import StrictParams
from baselines.registry import UnknownComponentError

DEFAULT_MODEL = "organism"
DEFAULT_DATASET = "bundled"
DEFAULT_JUDGES = ("refusal",)
DEFAULT_EVAL_ATTACK = "figstep"  # for a defense whose Params have no `attack` field


class RunConfigError(ValueError):
    """A run cannot be configured as asked (bad --set, bad --shard, judge/defense mismatch)."""


class ComponentSpec(StrictParams):
    """A registry name plus its validated, fully resolved Params (defaults included)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class GenerationSettings(StrictParams):
    """Decoding settings recorded with the run (mirrors baselines.types.GenerationConfig)."""

    max_new_tokens: int = Field(128, gt=0)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0


class Condition(StrictParams):
    """One condition of a run: its name ('text-only', 'figstep', 'figstep+ecso'), attack and defense."""

    name: str
    attack: str | None = None
    defense: str | None = None


class RunConfig(StrictParams):
    """The full, validated configuration of a run (recorded in the Result; enough to rerun it)."""

    baseline: str
    baseline_kind: Literal["attack", "defense"]
    attack: ComponentSpec | None = Field(
        None, description="the baseline attack, or a defense's evaluation attack"
    )
    defense: ComponentSpec | None = None
    model: str = DEFAULT_MODEL
    model_params: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None
    dataset: ComponentSpec
    judges: list[ComponentSpec]
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    batch_size: int = Field(8, gt=0)
    limit: int | None = Field(None, gt=0)
    shard: tuple[int, int] | None = Field(
        None, description="(i, n): this run holds partition i of n (0-based)"
    )
    conditions: list[Condition]

    def hash(self, *, without_shard: bool = False) -> str:
        """SHA-256 of the canonical JSON of what determines the results (batch sizes excluded)."""
        data = self.model_dump(mode="json", exclude={"batch_size"})
        data["model_params"].pop("batch_size", None)
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


def parse_value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true/false, null, lists), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(sets: list[str] | None) -> dict[str, dict[str, Any]]:
    """Group ``key=value`` overrides by target: '' (the baseline), model, dataset, defense, attack, judge.<name>."""
    out: dict[str, dict[str, Any]] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RunConfigError(
                f"bad --set {item!r}: expected key=value (e.g. --set variant=figstep_pro, "
                "--set model.dtype=float32, --set judge.refusal.list=vlguard)"
            )
        target, field = "", key
        if key.startswith("judge."):
            parts = key.split(".", 2)
            if len(parts) != 3 or not parts[2]:
                raise RunConfigError(f"bad --set {item!r}: judge overrides are judge.<name>.<field>=value")
            target, field = f"judge.{parts[1]}", parts[2]
        elif "." in key and key.split(".", 1)[0] in ("model", "dataset", "defense", "attack"):
            target, field = key.split(".", 1)
        out.setdefault(target, {})[field] = parse_value(value)
    return out


def resolve_spec(kind: str, name: str, values: dict[str, Any]) -> ComponentSpec:
    """Validate ``values`` against the Params of the registered ``kind`` ``name`` (defaults filled in)."""
    cls = registry.get(kind, name)
    params = build_params(cls.Params, values, f"{kind} {name!r}")
    return ComponentSpec(name=name, params=params.model_dump(mode="json"))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' -> (i, n) with 0 <= i < n."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise RunConfigError(f"bad --shard {text!r}: expected i/n with 0 <= i < n (e.g. 0/4 ... 3/4)")
    return int(m.group(1)), int(m.group(2))


def defense_with_eval_attack(
    defense: str, attack: str | None, values: dict[str, Any]
) -> tuple[ComponentSpec, str]:
    """The defense's spec and its evaluation attack: ``--attack`` when given, else the defense's own Params
    field ``attack`` (e.g. ``visual_adv`` for cider; ``--set attack=...`` sets it), else ``figstep``.

    An explicit ``--attack`` is also written into the defense's ``attack`` field, so the recorded config says
    what ran; ``--attack X`` together with ``--set attack=Y`` (Y != X) is an error."""
    values = dict(values)
    fields = registry.get("defense", defense).Params.model_fields
    if attack and "attack" in fields:
        if values.get("attack", attack) != attack:
            raise RunConfigError(
                f"--attack {attack} and --set attack={values['attack']} disagree; give only one of them"
            )
        values["attack"] = attack
    spec = resolve_spec("defense", defense, values)
    chosen = attack or spec.params.get("attack") or DEFAULT_EVAL_ATTACK
    if chosen not in registry.names("attack"):
        raise UnknownComponentError(
            f"defense {defense!r}: unknown evaluation attack {chosen!r}. "
            f"Valid attacks: {', '.join(registry.names('attack'))}"
        )
    return spec, str(chosen)


def baseline_kind(name: str) -> str:
    """'attack' or 'defense' for a registered baseline; an unknown name lists both kinds' names."""
    for kind in ("attack", "defense"):
        if name in registry.names(kind):
            return kind
    raise UnknownComponentError(
        f"unknown baseline {name!r}. Valid attacks: {', '.join(registry.names('attack')) or '(none)'}; "
        f"valid defenses: {', '.join(registry.names('defense')) or '(none)'}"
    )


def build_run_config(
    baseline: str,
    *,
    model: str = DEFAULT_MODEL,
    base_url: str | None = None,
    dataset: str = DEFAULT_DATASET,
    defense: str | None = None,
    attack: str | None = None,
    judges: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    shard: str | None = None,
    sets: list[str] | None = None,
    max_new_tokens: int = 128,
    seed: int = 0,
    temperature: float = 0.0,
) -> RunConfig:
    """Validate CLI-level choices into a RunConfig (unknown names and bad --set raise clear errors)."""
    kind = baseline_kind(baseline)
    overrides = parse_sets(sets)
    ds_name, _, ds_path = dataset.partition(":")
    ds_values = dict(overrides.pop("dataset", {}))
    if ds_path:
        ds_values.setdefault("path", ds_path)
    judge_names = list(judges or DEFAULT_JUDGES)
    if len(set(judge_names)) != len(judge_names):
        raise RunConfigError(f"--judge lists a judge twice: {', '.join(judge_names)}")
    judge_specs = [resolve_spec("judge", j, overrides.pop(f"judge.{j}", {})) for j in judge_names]
    from baselines.models import parse_spec

    backend, model_values = parse_spec(model)
    if base_url is not None:
        if backend != "openai":
            raise RunConfigError(f"--base-url applies only to openai:<model> back-ends, not {model!r}")
        model_values["base_url"] = base_url
    model_values.update(overrides.pop("model", {}))
    model_cls = registry.get("model", backend)
    if "batch_size" in model_cls.Params.model_fields:  # the back-end's own batching follows --batch-size
        model_values.setdefault("batch_size", batch_size)
    model_params = build_params(model_cls.Params, model_values, f"model {model!r}")
    if kind == "attack":
        if attack and attack != baseline:
            raise RunConfigError(f"--attack is for defense baselines; {baseline!r} is itself an attack")
        attack_spec = resolve_spec("attack", baseline, overrides.pop("", {}))
        defense_spec = resolve_spec("defense", defense, overrides.pop("defense", {})) if defense else None
        conditions = [Condition(name="text-only"), Condition(name=baseline, attack=baseline)]
        if defense_spec:
            conditions.append(Condition(name=f"{baseline}+{defense}", attack=baseline, defense=defense))
    else:
        if defense and defense != baseline:
            raise RunConfigError(f"--defense is for attack baselines; {baseline!r} is itself a defense")
        defense_spec, a = defense_with_eval_attack(baseline, attack, overrides.pop("", {}))
        attack_spec = resolve_spec("attack", a, overrides.pop("attack", {}))
        conditions = [
            Condition(name=a, attack=a),
            Condition(name=f"{a}+{baseline}", attack=a, defense=baseline),
        ]
    if overrides:
        targets = ", ".join(k or "(baseline)" for k in overrides)
        raise RunConfigError(
            f"--set targets {targets} match no component of this run "
            f"(judges: {', '.join(judge_names)}; defense: {defense_spec.name if defense_spec else 'none'})"
        )
    return RunConfig(
        baseline=baseline,
        baseline_kind=kind,
        attack=attack_spec,
        defense=defense_spec,
        model=model,
        model_params=model_params.model_dump(mode="json"),
        base_url=base_url,
        dataset=resolve_spec("dataset", ds_name, ds_values),
        judges=judge_specs,
        generation=GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed),
        batch_size=batch_size,
        limit=limit,
        shard=parse_shard(shard),
        conditions=conditions,
    )
