"""Judge-validation files: ``catalog/judges/<judge>/<label set>__<judge model>.yaml``, one per (judge, set, model).

Written only by ``mllm-safety judges validate`` (validated, atomic); read and checked by ``mllm-safety catalog
check``; shown on the site's judges page beside the figures the judge's paper published. Every rate carries its
interval (Wilson for proportions, bootstrap for F1 and kappa) and the number of items behind it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from tools.catalog.model import CatalogError, CatalogIssue
from tools.catalog.schema import Strict

JUDGES_DIR = "judges"


class Interval(Strict):
    """A value with its 95% interval (kappa may be negative)."""

    value: float = Field(ge=-1, le=1)
    ci_low: float = Field(ge=-1, le=1)
    ci_high: float = Field(ge=-1, le=1)
    n: int = Field(ge=0, description="items behind the value")

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if not (self.ci_low <= self.value + 1e-9 and self.value <= self.ci_high + 1e-9):
            raise ValueError("expected ci_low <= value <= ci_high")
        return self


class Confusion(Strict):
    """Counts with positive = jailbroken / behaviour exhibited."""

    tp: int = Field(ge=0)
    fp: int = Field(ge=0)
    tn: int = Field(ge=0)
    fn: int = Field(ge=0)


class BinaryMetrics(Strict):
    """A judge's agreement with the human majority on the items it decided."""

    n: int = Field(ge=0)
    confusion: Confusion
    accuracy: Interval | None = None
    precision: Interval | None = None
    recall: Interval | None = None
    fpr: Interval | None = Field(None, description="false-positive rate FP/(FP+TN)")
    fnr: Interval | None = Field(None, description="false-negative rate FN/(FN+TP)")
    f1: Interval | None = None
    kappa: Interval | None = Field(None, description="Cohen's kappa with the human majority")
    positive_rate_judge: Interval | None = None
    positive_rate_human: Interval | None = None

    @model_validator(mode="after")
    def _counts(self) -> BinaryMetrics:
        c = self.confusion
        if c.tp + c.fp + c.tn + c.fn != self.n:
            raise ValueError(f"confusion counts sum to {c.tp + c.fp + c.tn + c.fn}, not n = {self.n}")
        return self


class PublishedFigure(Strict):
    """A figure the judge's paper (or model card) published for this label set."""

    metric: str
    value: float
    source: str
    verified: bool = Field(description="read in the source (True) or recalled/secondary (False)")
    note: str | None = None


class JudgeValidation(Strict):
    """One judge scored against one human-labelled set."""

    schema_version: Literal[1] = 1
    judge: str
    judge_config: dict[str, Any]
    judge_config_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    judge_model: dict[str, Any] = Field(
        default_factory=dict, description="backend, id, revision of the judge model"
    )
    label_set: dict[str, Any] = Field(description="name, format, source file, checksum, n_items")
    n_items: int = Field(ge=0)
    n_judged: int = Field(ge=0)
    unjudged: int = Field(ge=0, description="items the judge could not decide (left out of every metric)")
    unjudged_errors: dict[str, int] = Field(default_factory=dict, description="error kind -> count")
    first_error: str | None = None
    metrics: BinaryMetrics
    per_category: dict[str, BinaryMetrics] = Field(default_factory=dict)
    stored_judges: dict[str, BinaryMetrics] = Field(
        default_factory=dict, description="the verdicts the set itself stores for other judges, recomputed"
    )
    human_unanimous: Interval | None = None
    published: list[PublishedFigure] = Field(default_factory=list)
    labels: list[str] = Field(
        default_factory=list, description="e.g. 'stand-in judge model', 'fixture labels'"
    )
    notes: list[str] = Field(default_factory=list)
    provenance: dict[str, Any]
    created: str

    @model_validator(mode="after")
    def _consistent(self) -> JudgeValidation:
        if self.n_judged + self.unjudged != self.n_items or self.metrics.n != self.n_judged:
            raise ValueError("n_items must equal n_judged + unjudged, and metrics.n must equal n_judged")
        return self


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-").lower() or "none"


def validation_path(v: JudgeValidation, root: Path) -> Path:
    """``judges/<judge>/<label set>__<judge model id>.yaml`` under the catalog ``root``."""
    model = v.judge_model.get("id") or v.judge_config.get("params", {}).get("model") or "default"
    return Path(root) / JUDGES_DIR / _slug(v.judge) / f"{_slug(v.label_set.get('name'))}__{_slug(model)}.yaml"


def write_validation(data: dict[str, Any] | JudgeValidation, root: Path) -> Path:
    """Validate and write a judge-validation file atomically; raises CatalogError (nothing written) if invalid."""
    from tools.catalog.store import atomic_write_text

    try:
        v = data if isinstance(data, JudgeValidation) else JudgeValidation.model_validate(data)
    except ValidationError as e:
        where = Path(root) / JUDGES_DIR
        raise CatalogError(
            [
                CatalogIssue(
                    where, None, f"invalid judge validation: {'.'.join(map(str, err['loc']))}: {err['msg']}"
                )
                for err in e.errors()
            ]  # fmt: skip
        ) from None
    path = validation_path(v, root)
    dumped = yaml.safe_dump(v.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)
    atomic_write_text(path, dumped)
    return path


def check_validations(checker: Any) -> None:
    """The ``catalog check`` pass over ``judges/``: each file validated (located errors), loaded into the catalog."""
    from tools.catalog.checks import _yaml_files, validate

    files = _yaml_files(checker.root / JUDGES_DIR, recursive=True)
    checker.scan.counts["judge validations"] = len(files)
    for path in files:
        v, doc, issues = validate(JudgeValidation, path, "the judge validation")
        checker.scan.issues.extend(issues)
        if v is None:
            continue
        if checker.full and path.parent.name != _slug(v.judge):
            msg = f"validation of judge {v.judge!r} is in the folder {path.parent.name!r}"
            checker.add(
                CatalogIssue(
                    path, doc.line_of(("judge",)), msg, "written only by `mllm-safety judges validate`"
                )
            )
        checker.scan.catalog.judge_validations.append(v)
