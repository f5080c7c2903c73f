"""Pydantic models of the catalog: a paper, a vocabulary, and a reproduced result (all ``extra="forbid"``).

The schema checks the *shape* of one file. Cross-file rules (vocabulary terms exist, ids are unique,
baselines are registered) live in ``tools.catalog.store``, which also turns errors into file:line messages.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

ID_RE = r"^(19|20)\d{2}-[a-z0-9]+(-[a-z0-9]+)*$"
ARXIV_RE = r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})$"
DATE_RE = r"^\d{4}-\d{2}(-\d{2})?$"
TERM_RE = r"^[a-z0-9][a-z0-9+\-.]*$"

# Which vocabulary file (catalog/vocab/<name>.yaml) each term-valued field of a Paper draws from.
# ("catalog/vocab/tracking.yaml" is the tracker's configuration, not a vocabulary.)
VOCAB_FIELDS: dict[str, str] = {
    "category": "categories",
    "also": "categories",
    "attack.threat_model": "threat_models",
    "attack.surface": "attack_surfaces",
    "attack.techniques": "attack_techniques",
    "defense.stage": "defense_stages",
    "defense.kind": "defense_kinds",
    "evaluation.measures": "eval_measures",
    "evaluation.harm_categories": "harm_categories",
    "evaluation.modalities": "modalities",
    "models": "models",
    "reported_results.model": "models",
    "reported_results.dataset": "datasets",
    "implemented_in": "toolkits",
    "evaluated_on": "datasets",
}

# Kinds of source a field's value may come from (``field_sources``); docs/schema.md explains each.
SOURCE_KINDS = (
    "arxiv-api",  # the arXiv API itself (e.g. `mllm-safety catalog add`)
    "arxiv-api-mirror",  # a public repository file holding arXiv API records: <owner>/<repo>/<path>[@commit]
    "arxiv-digest",  # a public daily arXiv digest file: <owner>/<repo>/<path>[@commit]
    "list",  # a curated list's own text: <owner>/<repo>
    "bibtex",  # BibTeX shipped by a curated list: <owner>/<repo>
    "paper",  # the paper itself (PDF, proceedings page)
    "manual",  # typed by a contributor; say from where in `notes`
)
SOURCE_RE = r"^(" + "|".join(SOURCE_KINDS) + r")(:\S+)?$"

Category = Literal["evaluation", "attack", "defense", "survey", "other"]
Term = Annotated[str, Field(pattern=TERM_RE, description="a term id from a catalog/vocab file")]


class Strict(BaseModel):
    """Base of every catalog model: unknown fields are errors, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def check_url(value: str | None) -> str | None:
    """Only absolute http(s) URLs are allowed (no javascript:, file:, data:, relative links)."""
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, flags=re.IGNORECASE):
        raise ValueError(
            f"{value!r} is not an http(s) URL; only links starting with http:// or https:// are allowed"
        )
    return value


def check_date(value: str) -> str:
    """A real calendar date written YYYY-MM or YYYY-MM-DD."""
    if not re.match(DATE_RE, value):
        raise ValueError(f"{value!r} is not a date; write YYYY-MM or YYYY-MM-DD")
    parts = [int(p) for p in value.split("-")]
    try:
        _dt.date(parts[0], parts[1], parts[2] if len(parts) == 3 else 1)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a real date ({e})") from None
    return value


class Links(Strict):
    """Links of a paper; every one must be an http(s) URL."""

    paper: str | None = Field(None, description="the paper (arXiv abstract page, proceedings page)")
    code: str | None = Field(None, description="official code repository")
    project: str | None = Field(None, description="project page")
    dataset: str | None = Field(None, description="released dataset")
    huggingface: str | None = Field(None, description="Hugging Face model, dataset or paper page")

    _urls = field_validator("paper", "code", "project", "dataset", "huggingface")(check_url)


Source = Annotated[
    str,
    Field(
        pattern=SOURCE_RE,
        description="<kind>[:<where>], kind one of "
        + ", ".join(SOURCE_KINDS)
        + "; e.g. arxiv-api-mirror:wonderNefelibata/Awesome-LRM-Safety/articles/article.json@93f0584",
    ),
]


class FieldSources(Strict):
    """Where each metadata field of a paper was read from (one source per field)."""

    title: Source | None = Field(None, description="source of the (current) title")
    authors: Source | None = Field(None, description="source of the author list")
    affiliations: Source | None = Field(None, description="source of the affiliations")
    abstract: Source | None = Field(None, description="source of the verbatim abstract")
    date: Source | None = Field(None, description="source of the first-version date")
    venue: Source | None = Field(None, description="source that states the venue")
    arxiv_class: Source | None = Field(None, description="source of the primary arXiv category")


class AttackFacets(Strict):
    """What an attack paper does: threat model, the input channel it attacks, its techniques."""

    threat_model: list[Term] = Field(default_factory=list, description="vocab threat_models (white-box, ...)")
    surface: list[Term] = Field(
        default_factory=list, description="vocab attack_surfaces (image, text, image+text)"
    )
    techniques: list[Term] = Field(default_factory=list, description="vocab attack_techniques")


class DefenseFacets(Strict):
    """What a defense paper does: when it acts and how."""

    stage: list[Term] = Field(default_factory=list, description="vocab defense_stages (training, inference)")
    kind: list[Term] = Field(default_factory=list, description="vocab defense_kinds")


class EvaluationFacets(Strict):
    """What a benchmark / evaluation paper measures and releases."""

    measures: list[Term] = Field(default_factory=list, description="vocab eval_measures")
    size: int | None = Field(None, ge=0, description="number of test items, when stated")
    harm_categories: list[Term] = Field(default_factory=list, description="vocab harm_categories")
    modalities: list[Term] = Field(default_factory=list, description="vocab modalities")
    dataset_released: bool | None = Field(None, description="whether the dataset is publicly released")


class ReportedResult(Strict):
    """One number the paper itself reports (not reproduced by the project)."""

    model: str = Field(description="model id from catalog/vocab/models.yaml")
    dataset: str = Field(description="dataset id from catalog/vocab/datasets.yaml")
    metric: str = Field(description="e.g. asr, harmless_rate, refusal_rate, detection_accuracy")
    value: float = Field(description="the value as a fraction in [0, 1] for rates")
    condition: str | None = Field(None, description="e.g. 'text-only', 'figstep', 'figstep+ecso'")
    judge: str | None = Field(None, description="how success was judged (manual review, gpt-4, keyword, ...)")
    where: str | None = Field(None, description="where in the paper or repository (Table 1, README)")
    notes: str | None = None


class Paper(Strict):
    """One paper of the field: one file catalog/papers/<id>.yaml."""

    id: str = Field(
        pattern=ID_RE, description="<year>-<first author surname>-<short name>, equals the file stem"
    )
    title: str = Field(min_length=3)
    authors: list[str] = Field(
        default_factory=list, description="in order; empty only with authors_status: unknown"
    )
    authors_status: Literal["complete", "partial", "unknown"] = Field(
        "complete",
        description="complete (default); partial: the source gives only some authors ('et al.'); "
        "unknown: no source gives them (authors must then be empty)",
    )
    affiliations: list[str] = Field(default_factory=list)
    date: str = Field(description="first public version, YYYY-MM or YYYY-MM-DD")
    venue: str | None = Field(
        None, description="publication venue as a source states it, e.g. 'ECCV 2024'; null = unknown"
    )
    arxiv: str | None = Field(None, pattern=ARXIV_RE, description="arXiv id without version, e.g. 2311.05608")
    arxiv_class: str | None = Field(
        None, pattern=r"^[a-z\-]+(\.[A-Za-z\-]+)?$", description="primary arXiv category, e.g. cs.CV"
    )
    abstract: str | None = Field(
        None, description="the abstract verbatim (never paraphrased); needs field_sources.abstract"
    )
    field_sources: FieldSources = Field(
        default_factory=FieldSources, description="which source gave title, authors, abstract, date, venue"
    )
    verified: bool | None = Field(
        None,
        description="id<->title independently checked (true) or not (false) for an imported candidate; "
        "null when the question does not arise",
    )
    verified_by: list[str] = Field(default_factory=list, description="how the id<->title check was made")
    links: Links = Field(default_factory=Links)
    category: Category
    also: list[Category] = Field(default_factory=list, description="secondary categories")
    scope: Literal["core", "borderline"] = "core"
    scope_reason: str | None = Field(None, description="why the paper is borderline (required then)")
    attack: AttackFacets | None = None
    defense: DefenseFacets | None = None
    evaluation: EvaluationFacets | None = None
    models: list[str] = Field(
        default_factory=list, description="target model ids from catalog/vocab/models.yaml"
    )
    baseline: list[str] = Field(
        default_factory=list,
        description="registry names of the project's implementations (attack/defense/judge)",
    )
    reported_results: list[ReportedResult] = Field(default_factory=list)
    evaluated_on: list[Term] = Field(
        default_factory=list, description="dataset ids (catalog/vocab/datasets.yaml) the paper reports on"
    )
    implemented_in: list[Term] = Field(
        default_factory=list, description="toolkits (catalog/vocab/toolkits.yaml) that implement the method"
    )
    sources: list[str] = Field(default_factory=list, description="curated lists the paper was found in")
    notes: str | None = None
    suggested: bool = Field(
        False,
        description="true: category and facets were suggested by a tool and await a contributor's review; "
        "false (the default): a person has reviewed them",
    )

    _date = field_validator("date")(check_date)

    @field_validator("baseline", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistency(self) -> Paper:
        if self.scope == "borderline" and not self.scope_reason:
            raise ValueError(
                "scope is 'borderline' but scope_reason is missing; say why the paper is borderline"
            )
        if self.category in self.also:
            raise ValueError(f"'also' repeats the main category {self.category!r}")
        if self.authors_status == "unknown" and self.authors:
            raise ValueError(
                "authors_status is 'unknown' but authors are listed; remove authors_status "
                "(or set it to 'partial' if the list is incomplete)"
            )
        if self.abstract and not self.field_sources.abstract:
            raise ValueError(
                "abstract has no source; add field_sources: {abstract: <kind>:<where>} (see docs/schema.md)"
            )
        if self.verified_by and self.verified is not True:
            raise ValueError("verified_by is given but verified is not true; set verified: true or drop it")
        return self


class VocabTerm(Strict):
    """One term of a controlled vocabulary, with a one-line definition (feeds filters and the glossary)."""

    id: str = Field(pattern=TERM_RE)
    name: str
    definition: str = Field(min_length=3)
    aliases: list[str] = Field(default_factory=list)
    url: str | None = None
    hf: str | None = Field(None, description="Hugging Face repo id, for models")
    parent: str | None = Field(None, description="broader term id in the same vocabulary")

    _url = field_validator("url")(check_url)


class Vocabulary(Strict):
    """A file catalog/vocab/<name>.yaml."""

    name: str
    description: str
    terms: list[VocabTerm] = Field(min_length=1)


# ----------------------------------------------------------------------------------------------------------
# Reproduced results (written by the harness through tools.catalog.store.write_result; never by hand)


class Estimate(Strict):
    """A rate with its 95% confidence interval (exact Clopper-Pearson; see baselines.metrics)."""

    value: float = Field(ge=0, le=1)
    ci_low: float = Field(ge=0, le=1)
    ci_high: float = Field(ge=0, le=1)
    n: int = Field(ge=0, description="number of judged samples")

    @model_validator(mode="after")
    def _ordered(self) -> Estimate:
        if not (self.ci_low <= self.value + 1e-9 and self.value <= self.ci_high + 1e-9):
            raise ValueError("expected ci_low <= value <= ci_high")
        return self


class JudgeMetrics(Strict):
    """Metrics of one judge in one condition."""

    judge: str
    asr: Estimate | None = Field(None, description="attack success rate on harmful samples")
    refusal_rate_benign: Estimate | None = Field(
        None, description="refusals on benign controls (over-refusal)"
    )
    unjudged: int = Field(0, ge=0, description="samples this judge could not decide (errors)")
    per_category: dict[str, Estimate] = Field(default_factory=dict)
    mean_score: Estimate | None = Field(
        None, description="mean continuous score in [0, 1] on harmful samples (e.g. StrongREJECT), Hoeffding CI"
    )


class ConditionResult(Strict):
    """One condition of a run, e.g. text-only, figstep, figstep+ecso."""

    condition: str
    attack: str | None = None
    defense: str | None = None
    n_samples: int = Field(ge=0)
    judges: list[JudgeMetrics]
    scores: dict[str, Estimate] = Field(
        default_factory=dict,
        description="a benchmark's official scores (mllm-safety eval: siuo.safe, mssbench.total_acc, ...) and a "
        "defense's cost (over_refusal, utility), each with its interval",
    )
    scored_by: dict[str, str] = Field(
        default_factory=dict,
        description="score prefix -> the judge its scores read ('(proxy)' when not official)",
    )
    decisions: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description="boolean decisions a defense recorded per sample (e.g. jailguard.detected): [true, recorded]",
    )
    queries: dict[str, float] | None = Field(
        None, description="target queries a query-based attack spent per item: mean, max, n (items counted)"
    )


class Agreement(Strict):
    """Cohen's kappa between two judges over the samples both decided."""

    judges: tuple[str, str]
    kappa: float | None = Field(None, ge=-1, le=1)
    n: int = Field(ge=0)


class Difference(Strict):
    """ASR of a condition minus that of the condition before it (attack gain, defense drop), paired over the
    harmful samples one judge decided in both, with its 95% interval (Bonett-Price; see baselines.metrics)."""

    judge: str
    condition: str
    reference: str
    value: float = Field(ge=-1, le=1)
    ci_low: float = Field(ge=-1, le=1)
    ci_high: float = Field(ge=-1, le=1)
    n: int = Field(ge=1, description="harmful samples the judge decided in both conditions")

    @model_validator(mode="after")
    def _ordered(self) -> Difference:
        if not (self.ci_low <= self.value + 1e-9 and self.value <= self.ci_high + 1e-9):
            raise ValueError("expected ci_low <= value <= ci_high")
        return self


class Result(Strict):
    """A reproduced result: one file per (baseline, model, dataset, defense) under catalog/results/<baseline>/."""

    schema_version: Literal[1] = SCHEMA_VERSION
    baseline: str
    paper_id: str | None = None
    model: dict[str, Any] = Field(
        description="backend, id, revision, dtype, device, labels (smoke-test, organism)"
    )
    dataset: dict[str, Any] = Field(description="name, checksum, n_samples, source, skipped")
    defense: str | None = None
    judges: list[dict[str, Any]] = Field(description="each judge's config and its hash")
    conditions: list[ConditionResult] = Field(min_length=1)
    agreement: list[Agreement] = Field(default_factory=list)
    differences: list[Difference] = Field(
        default_factory=list, description="paired ASR differences between consecutive conditions"
    )
    config: dict[str, Any] = Field(description="the full validated RunConfig, enough to rerun")
    provenance: dict[str, Any] = Field(
        description="package version, git commit, library versions, device, date, seeds, samples.jsonl sha256"
    )
    labels: list[str] = Field(default_factory=list, description="e.g. 'smoke-test model', 'model organism'")
    run_id: str
    created: str
    variant: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="what sets this result apart from the baseline's default run ('partial-limit2', "
        "'set-1a2b3c4d'); ends its file name. None: the default configuration, complete",
    )
    partial: list[str] = Field(
        default_factory=list,
        description="why the result covers less than its configuration (limit, dataset subset, failed "
        "samples, missing shards); empty when complete",
    )
