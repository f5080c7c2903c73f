"""RunRequest: what a person asks for (`mllm-safety run <baseline> --model ... --attack ...`), before it is
resolved into a :class:`~baselines.runconfig.RunConfig`.

Its field defaults are the only defaults of the run command: argparse shows them in ``--help`` and leaves
unset options out, :meth:`RunRequest.command_line` leaves default values out of the resume hint, and the
defaults shared with the RunConfig (model, batch size, decoding) are read from the RunConfig's own fields.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import Any

from pydantic import BaseModel, Field

from baselines import registry
from baselines.base import build_params
from baselines.params import StrictParams
from baselines.registry import UnknownComponentError
from baselines.runconfig import (
    ComponentSpec,
    Condition,
    GenerationSettings,
    RunConfig,
    RunConfigError,
    default_attack,
)


def field_default(model: type[BaseModel], name: str) -> Any:
    """The declared default of a pydantic model's field (the one place a CLI default is written)."""
    return model.model_fields[name].get_default(call_default_factory=True)


def field_help(model: type[BaseModel], name: str) -> str:
    """A field's description plus its default (when it has one), for argparse help."""
    default = field_default(model, name)
    text = model.model_fields[name].description or ""
    if default is None or default == []:
        return text
    shown = " ".join(map(str, default)) if isinstance(default, list) else default
    return f"{text} (default {shown})"


def default_runs_dir() -> str:
    """Where run directories go: $MLLM_SAFETY_RUNS or ./runs."""
    return os.environ.get("MLLM_SAFETY_RUNS", "runs")


class RunRequest(StrictParams):
    """The choices of one `mllm-safety run` command; :meth:`config` validates them into a RunConfig."""

    baseline: str = Field(description="registered attack or defense (see `mllm-safety list`)")
    model: str = Field(
        field_default(RunConfig, "model"), description=RunConfig.model_fields["model"].description
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for openai:<model>")
    dataset: str = Field("bundled", description="dataset name, optionally name:path")
    defense: str | None = Field(None, description="defense added as a third condition (attack baselines)")
    attack: str | None = Field(
        None,
        description="evaluation attack of a defense baseline (default: its paper's, see `mllm-safety list defenses`)",
    )
    judges: list[str] = Field(["refusal"], description="judge(s), repeatable")
    limit: int | None = Field(None, gt=0, description=RunConfig.model_fields["limit"].description)
    batch_size: int = Field(
        field_default(RunConfig, "batch_size"),
        gt=0,
        description=RunConfig.model_fields["batch_size"].description,
    )
    shard: str | None = Field(None, description="i/n: partition i (0-based) of n")
    device: str | None = Field(
        None, description="torch device of an hf/organism model, e.g. cuda:1 (default: cuda if any, else cpu)"
    )
    sets: list[str] = Field(default_factory=list, description="Params overrides key=value")
    max_new_tokens: int = Field(
        field_default(GenerationSettings, "max_new_tokens"),
        gt=0,
        description=GenerationSettings.model_fields["max_new_tokens"].description,
    )
    temperature: float = Field(
        field_default(GenerationSettings, "temperature"),
        ge=0,
        description=GenerationSettings.model_fields["temperature"].description,
    )
    seed: int = Field(
        field_default(GenerationSettings, "seed"),
        description=GenerationSettings.model_fields["seed"].description,
    )

    @classmethod
    def parse(cls, **choices: Any) -> RunRequest:
        """The request of ``choices`` (RunRequest field names; None means "not given"); a bad value raises
        RunConfigError naming its option (``--limit 0: must be greater than 0``), never a pydantic dump."""
        from pydantic import ValidationError

        try:
            return cls(**{k: v for k, v in choices.items() if v is not None})
        except ValidationError as e:
            raise RunConfigError(option_errors(e)) from None

    def command_line(self, *, runs_dir: str | None = None, no_write_back: bool = False) -> str:
        """The `mllm-safety run ...` command that repeats this request (printed to resume an interrupted run):
        options left at their defaults are left out."""
        parts = ["mllm-safety", "run", self.baseline]
        flags = {"judges": "--judge", "sets": "--set"}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "baseline" or value == field_default(type(self), name):
                continue
            flag = flags.get(name, f"--{name.replace('_', '-')}")
            for v in value if isinstance(value, list) else [value]:
                parts += [flag, str(v)]
        if runs_dir is not None and str(runs_dir) != default_runs_dir():
            parts += ["--runs-dir", str(runs_dir)]
        if no_write_back:
            parts.append("--no-write-back")
        return shlex.join(parts)

    def config(self) -> RunConfig:
        """Validate the request into a RunConfig (unknown names and bad --set raise clear errors)."""
        kind = baseline_kind(self.baseline)
        overrides = parse_sets(self.sets)
        ds_name, _, ds_path = self.dataset.partition(":")
        ds_values = dict(overrides.pop("dataset", {}))
        if ds_path:
            ds_values.setdefault("path", ds_path)
        if len(set(self.judges)) != len(self.judges):
            raise RunConfigError(f"--judge lists a judge twice: {', '.join(self.judges)}")
        paper_judging = attack_judge_params(
            self.baseline if kind == "attack" else self.attack or default_attack(self.baseline)
        )
        judge_specs = [
            resolve_spec("judge", j, {**paper_judging.get(j, {}), **overrides.pop(f"judge.{j}", {})})
            for j in self.judges
        ]
        model_params = self.model_params(overrides.pop("model", {}))
        if kind == "attack":
            if self.attack and self.attack != self.baseline:
                raise RunConfigError(
                    f"--attack is for defense baselines; {self.baseline!r} is itself an attack"
                )
            attack_spec = resolve_spec("attack", self.baseline, overrides.pop("", {}))
            d = self.defense
            defense_spec = resolve_spec("defense", d, overrides.pop("defense", {})) if d else None
            conditions = [Condition(name="text-only"), Condition(name=self.baseline, attack=self.baseline)]
            if d:
                conditions.append(Condition(name=f"{self.baseline}+{d}", attack=self.baseline, defense=d))
        else:
            if self.defense and self.defense != self.baseline:
                raise RunConfigError(
                    f"--defense is for attack baselines; {self.baseline!r} is itself a defense"
                )
            a = self.evaluation_attack()
            defense_spec = resolve_defense(self.baseline, a, overrides.pop("", {}))
            attack_spec = resolve_spec("attack", a, overrides.pop("attack", {}))
            conditions = [
                Condition(name=a, attack=a),
                Condition(name=f"{a}+{self.baseline}", attack=a, defense=self.baseline),
            ]
        if overrides:
            targets = ", ".join(k or "(baseline)" for k in overrides)
            raise RunConfigError(
                f"--set targets {targets} match no component of this run "
                f"(judges: {', '.join(self.judges)}; defense: {defense_spec.name if defense_spec else 'none'})"
            )
        return RunConfig(
            baseline=self.baseline,
            baseline_kind=kind,
            attack=attack_spec,
            defense=defense_spec,
            model=self.model,
            model_params=model_params,
            base_url=self.base_url,
            dataset=resolve_spec("dataset", ds_name, ds_values),
            judges=judge_specs,
            generation=GenerationSettings(
                max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed
            ),
            batch_size=self.batch_size,
            limit=self.limit,
            shard=parse_shard(self.shard),
            conditions=conditions,
        )

    def model_params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The back-end's validated Params: from the model spec, --base-url, --set model.k and --batch-size."""
        from baselines.models import parse_spec

        backend, values = parse_spec(self.model)
        if self.base_url is not None:
            if backend != "openai":
                raise RunConfigError(
                    f"--base-url applies only to openai:<model> back-ends, not {self.model!r}"
                )
            values["base_url"] = self.base_url
        values.update(overrides)
        model_cls = registry.get("model", backend)
        if self.device is not None:  # one shard per GPU: --device cuda:i
            if "device" not in model_cls.Params.model_fields:
                raise RunConfigError(f"--device applies to hf: and organism models, not {self.model!r}")
            values["device"] = self.device
        if "batch_size" in model_cls.Params.model_fields:  # the back-end's own batching follows --batch-size
            values.setdefault("batch_size", self.batch_size)
        return build_params(model_cls.Params, values, f"model {self.model!r}").model_dump(mode="json")

    def evaluation_attack(self) -> str:
        """The attack a defense baseline is evaluated against: --attack, else the defense's paper default."""
        chosen = self.attack or default_attack(self.baseline)
        if not chosen:
            raise RunConfigError(
                f"defense {self.baseline!r} names no default evaluation attack; give one with --attack"
            )
        if chosen not in registry.names("attack"):
            raise UnknownComponentError(
                f"defense {self.baseline!r}: unknown evaluation attack {chosen!r}. "
                f"Valid attacks: {', '.join(registry.names('attack'))}"
            )
        return chosen


def attack_judge_params(attack: str | None) -> dict[str, dict[str, Any]]:
    """The judge Params an attack's paper evaluates with (``Attack.judge_params``); {} for none or unknown."""
    if not attack or attack not in registry.names("attack"):
        return {}
    return dict(getattr(registry.get("attack", attack), "judge_params", {}) or {})


OPTION_NAMES = {"judges": "--judge", "sets": "--set", "baseline": "baseline"}


def option_errors(error: Any) -> str:
    """A pydantic ValidationError of a RunRequest (or the RunConfig it builds) as one line naming the options:
    ``--limit 0: Input should be greater than 0``."""
    parts = []
    for err in error.errors():
        name = str(err["loc"][0]) if err.get("loc") else "?"
        flag = OPTION_NAMES.get(name, f"--{name.replace('_', '-')}")
        given = err.get("input")
        shown = f" {given}" if isinstance(given, (int, float, str)) and not isinstance(given, bool) else ""
        parts.append(f"{flag}{shown}: {err['msg']}")
    return "bad option: " + "; ".join(parts)


def resolve_defense(defense: str, attack: str, values: dict[str, Any]) -> ComponentSpec:
    """A defense baseline's spec; a ``train_attack`` field left unset (AdaShield-A) is set to the evaluation
    attack, so the recorded config says what the defense trained on."""
    if "attack" in values and "attack" not in registry.get("defense", defense).Params.model_fields:
        raise RunConfigError(
            f"--set attack={values['attack']}: the evaluation attack is chosen with --attack "
            f"(e.g. mllm-safety run {defense} --attack {values['attack']})"
        )
    fields = registry.get("defense", defense).Params.model_fields
    if "train_attack" in fields and values.get("train_attack") is None:
        values = {**values, "train_attack": attack}
    return resolve_spec("defense", defense, values)


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


def baseline_kind(name: str) -> str:
    """'attack' or 'defense' for a registered baseline; an unknown name lists both kinds' names."""
    for kind in ("attack", "defense"):
        if name in registry.names(kind):
            return kind
    import difflib

    close = difflib.get_close_matches(name, registry.names("attack") + registry.names("defense"), n=3)
    raise UnknownComponentError(
        f"unknown baseline {name!r}.{' Did you mean ' + ', '.join(close) + '?' if close else ''} "
        f"Valid attacks: {', '.join(registry.names('attack')) or '(none)'}; "
        f"valid defenses: {', '.join(registry.names('defense')) or '(none)'}"
    )
