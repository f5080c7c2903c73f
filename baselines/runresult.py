"""From a run's records to a Result dict (matching ``tools.catalog.schema.Result``), with full provenance; merging shards.

Only metrics leave the run directory: raw prompts, responses and defense decisions stay in
``runs/<run id>/samples.jsonl``. No local absolute path enters a Result: they become ``<local>/<name>``
(dataset sources: the base name; the checksum is the identity).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from baselines.ledger import run_ledger
from baselines.runstore import RunStore, RunStoreError, external_sort, records_sha256

if TYPE_CHECKING:
    from baselines.judgeval import JudgeErrors

LIBRARIES = ("torch", "transformers", "pillow", "pydantic", "numpy", "tokenizers", "tqdm")


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy: mappings/sequences recursed, other non-JSON values as their repr."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


LOCAL = "<local>"  # stands for a local folder in published results: "<local>/name" (never a usable path)
_ABS = re.compile(r"^(?:~|/|[A-Za-z]:[\\/])")
_SPEC_PATH = re.compile(r"^([a-z]+):(?!//)((?:~|/|[A-Za-z]:[\\/]).*)$")  # hf:/abs/path[@rev]
_EMBEDDED = re.compile(r"(?<![\w.:/~-])(?:~|/)(?:[^\s'\"/]+/)+([^\s'\",:;)]+)")


def public_path(text: str) -> str:
    """``text`` with a local absolute path hidden: "/a/b/name" -> "<local>/name", "hf:/a/name@r" ->
    "hf:<local>/name@r"; anything else unchanged. Published results never carry local folders."""
    m = _SPEC_PATH.match(text)
    if m:
        return f"{m.group(1)}:{public_path(m.group(2))}"
    if _ABS.match(text):
        name = PurePath(text.replace("\\", "/")).name
        return f"{LOCAL}/{name}" if name else LOCAL
    return text


def public_paths(value: Any) -> Any:
    """A copy of ``value`` with :func:`public_path` applied to every string (keys kept) and credentials
    stripped from every URL (:func:`baselines.http.redact_urls`)."""
    from baselines.http import redact_urls

    if isinstance(value, dict):
        return {k: public_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public_paths(v) for v in value]
    return redact_urls(public_path(value)) if isinstance(value, str) else value


def public_dataset(ds: dict[str, Any]) -> dict[str, Any]:
    """The dataset block of a Result: ``source`` as a base name (the checksum is the identity), skipped
    items' paths relative to the source folder (else base names) and absolute paths in their errors hidden."""
    out = public_paths({k: v for k, v in ds.items() if k != "skipped"})
    src = ds.get("source")
    root = PurePath(src) if isinstance(src, str) and _ABS.match(src) else None
    if root is not None:
        out["source"] = root.name
    skipped = []
    for item in ds.get("skipped") or []:
        item = dict(item)
        path = item.get("path")
        if isinstance(path, str) and _ABS.match(path):
            pp = PurePath(path)
            base = next(
                (r for r in (root, root.parent if root else None) if r and pp.is_relative_to(r)), None
            )
            item["path"] = pp.relative_to(base).as_posix() if base else pp.name
        if isinstance(item.get("error"), str):
            item["error"] = _EMBEDDED.sub(lambda m: m.group(1), item["error"])
        skipped.append(public_paths(item))
    out["skipped"] = skipped
    return out


class _Decisions:
    """Per condition, each boolean decision a defense recorded: ``[times True, times recorded]``."""

    def __init__(self) -> None:
        self.out: dict[str, dict[str, list[int]]] = {}

    def _walk(self, cond: dict[str, list[int]], prefix: str, value: Any, depth: int) -> None:
        if isinstance(value, bool):
            count = cond.setdefault(prefix, [0, 0])
            count[0] += value
            count[1] += 1
        elif isinstance(value, dict) and depth < 3:
            for k, v in value.items():
                self._walk(cond, f"{prefix}.{k}" if prefix else str(k), v, depth + 1)

    def add(self, r: dict[str, Any]) -> None:
        meta = r.get("response_meta") or {}
        if meta:
            self._walk(self.out.setdefault(r["condition"], {}), "", meta, 0)

    def result(self) -> dict[str, dict[str, list[int]]]:
        return {cond: counts for cond, counts in self.out.items() if counts}


def defense_decisions(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """Per condition, each boolean decision a defense records in ``Response.meta`` (e.g. ``jailguard.detected``,
    ``ecso.unsafe``, ``guard_filter.input.flagged``): ``[times True, times recorded]``. Shown in the run
    summary and published as ``ConditionResult.decisions``."""
    acc = _Decisions()
    for r in records:
        acc.add(r)
    return acc.result()


def config_sha256(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data``."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def git_commit() -> dict[str, Any]:
    """The git commit of the checkout this package runs from (None outside a git checkout) and whether its code
    differs from it (tracked files outside ``catalog/``)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"git_commit": None}
        dirty = subprocess.run(
            # the catalog is data the runs write (results), not code: a result written a moment ago is no
            # reason to call the next run's code dirty
            [
                "git",
                "-C",
                str(here),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":/",
                ":(exclude,top)catalog",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that affect results (read from metadata, nothing imported)."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class RecordCounts:
    """How many records, failed generations and judged records a run has (counted in one pass)."""

    def __init__(self) -> None:
        self.n = self.failed = self.judged = 0

    def add(self, r: dict[str, Any]) -> None:
        self.n += 1
        self.failed += bool(r.get("error"))
        self.judged += is_judged(r)

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> RecordCounts:
        counts = cls()
        for r in records:
            counts.add(r)
        return counts


def provenance(
    meta: dict[str, Any],
    samples_sha256: str | None,
    records: Iterable[dict[str, Any]],
    *,
    counts: RecordCounts | None = None,
) -> dict[str, Any]:
    """Package version, git commit, libraries, device, date, seeds, generation config, and two hashes of the
    records: of the samples.jsonl file as written (it holds wall-clock timings, so it differs between two runs
    of the same configuration) and of its content without timings (equal for runs with equal answers and
    verdicts: the one to compare when checking that a run reproduces). ``records`` is read once more for the
    content hash (streamed); ``counts`` when already counted."""
    from baselines import __version__

    counts = counts or RecordCounts.of(records)
    cfg = meta["config"]
    return {
        "package_version": __version__,
        **git_commit(),
        "libraries": library_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": meta.get("model_info", {}).get("device", "cpu"),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seeds": {"generation": cfg["generation"]["seed"], "bootstrap": cfg["generation"]["seed"]},
        "generation": cfg["generation"],
        "config_sha256": config_sha256(cfg),
        "samples_jsonl_sha256": samples_sha256,
        "records_sha256": records_sha256(records),
        "n_records": counts.n,
        "deviations": run_ledger(cfg),
        **({"defenses": public_paths(meta["defense_info"])} if meta.get("defense_info") else {}),
        "n_judged": counts.judged,
        "n_failed": counts.failed,
    }


def is_judged(record: dict[str, Any]) -> bool:
    """Whether some judge decided this record (a verdict with ``success`` or ``refused`` set)."""
    return any(
        v.get("success") is not None or v.get("refused") is not None
        for v in (record.get("verdicts") or {}).values()
    )


def default_config(cfg: dict[str, Any]) -> Any:
    """The RunConfig `mllm-safety run` builds for the same baseline, model, endpoint, dataset (and its path)
    and defense of an attack baseline, with every other choice at its default (no --set, --limit, --judge,
    --attack, decoding options). None when it cannot be built (e.g. a component no longer registered)."""
    from baselines.runconfig import RunConfig
    from baselines.runrequest import RunRequest

    if cfg.get("baseline_kind") == "eval":
        from baselines.evaluate import default_eval_config

        return default_eval_config(cfg)
    try:
        config = RunConfig.model_validate(cfg)
        path = config.dataset.params.get("path")
        request = RunRequest(
            baseline=config.baseline,
            model=config.model,
            base_url=config.base_url,
            dataset=f"{config.dataset.name}:{path}" if path else config.dataset.name,
            defense=config.defense.name if config.baseline_kind == "attack" and config.defense else None,
            batch_size=config.batch_size,
        )
        return request.config()
    except Exception:  # noqa: BLE001 - an unbuildable default only means "not the default run"
        return None


def scope(
    meta: dict[str, Any], records: Iterable[dict[str, Any]], *, counts: RecordCounts | None = None
) -> tuple[list[str], str | None]:
    """(why the result is partial, its variant name) -- see ``tools.catalog.schema.Result``.

    Partial: a ``--limit`` below the dataset's size, dataset settings other than the default (a subset),
    failed generations, or records missing (a merge of incomplete shards). The variant names the result
    file apart from the default run's: ``partial`` first when partial, ``limit<N>``, and ``set-<hash>`` (the
    run id's config hash) when anything else differs from the default configuration. ``counts``: the records
    already counted (else ``records`` is read)."""
    from baselines.runconfig import RunConfig

    counts = counts or RecordCounts.of(records)

    cfg = meta["config"]
    ds = meta.get("dataset") or {}
    n_conditions = len(cfg.get("conditions") or [])
    reasons: list[str] = []
    limit = cfg.get("limit")
    if limit and ds.get("n_samples_total") is not None and limit < ds["n_samples_total"]:
        reasons.append(f"--limit {limit}: the first {limit} of {ds['n_samples_total']} samples")
    default = default_config(cfg)
    if default is not None and default.dataset.params != cfg["dataset"]["params"]:
        changed = {k: v for k, v in cfg["dataset"]["params"].items() if default.dataset.params.get(k) != v}
        variant = _variant_params(cfg["dataset"]["name"])  # another official task is not a subset
        if not changed or any(k not in variant for k in changed):
            shown = ", ".join(f"{k}={v!r}" for k, v in changed.items() if k not in variant)
            reasons.append(
                f"dataset settings other than the default ({public_path(shown)}): a subset or variant"
            )
    failed = counts.failed
    if failed:
        reasons.append(
            f"{failed} of {counts.n} records failed (generation errors); rerun the same command to retry them"
        )
    expected = int(ds.get("n_samples") or 0) * n_conditions
    if counts.n < expected:
        reasons.append(f"{expected - counts.n} of {expected} records missing (incomplete shards)")
    this = RunConfig.model_validate(cfg)
    plain = this.model_copy(update={"limit": None, "shard": None})
    differs = default is None or plain.hash() != default.hash()
    parts = ["partial"] if reasons else []
    if limit:
        parts.append(f"limit{limit}")
    if differs:
        parts.append(f"set-{this.hash(without_shard=True)[:8]}")
    return reasons, "-".join(parts) or None


def _variant_params(dataset: str) -> tuple[str, ...]:
    """The dataset params that choose one of its official tasks (e.g. SIUO's ``task``): another value is a
    variant of the benchmark (named apart by the variant's ``set-<hash>``), not a subset."""
    from baselines import registry

    try:
        return tuple(getattr(registry.get("dataset", dataset), "variant_params", ()))
    except Exception:  # noqa: BLE001 - a dataset no longer registered has none
        return ()


def unpublishable(result: dict[str, Any]) -> str | None:
    """Why a Result must not be written into the catalog at all (None: it may be): no sample was judged --
    the dataset yielded no sample, or every request failed (bad key, endpoint down, judges all failing)."""
    prov = result.get("provenance") or {}
    if prov.get("n_judged"):
        return None
    n = prov.get("n_records", 0)
    if not n:
        return "no sample was run (the dataset yielded 0 samples); nothing to publish"
    return (
        f"none of the {n} records was judged ({prov.get('n_failed', 0)} failed generations); "
        "nothing to publish -- fix the cause and rerun the same command (failed samples are retried)"
    )


class _Queries:
    """Per condition, the target queries a query-based attack spent per item: [sum, max, n]."""

    def __init__(self) -> None:
        self.got: dict[str, list[int]] = {}

    def add(self, r: dict[str, Any]) -> None:
        q = (r.get("meta") or {}).get("attack_queries")
        if isinstance(q, int) and not isinstance(q, bool):
            acc = self.got.setdefault(r["condition"], [0, q, 0])
            acc[0] += q
            acc[1] = max(acc[1], q)
            acc[2] += 1

    def result(self) -> dict[str, dict[str, float]]:
        return {c: {"mean": total / n, "max": most, "n": n} for c, (total, most, n) in self.got.items()}


def attack_queries(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per condition, the target queries a query-based attack spent per item (``meta["attack_queries"]`` of
    the records that carry it): ``{"mean", "max", "n"}``. Published as ``ConditionResult.queries``."""
    acc = _Queries()
    for r in records:
        acc.add(r)
    return acc.result()


def build_result(
    meta: dict[str, Any],
    records: Iterable[dict[str, Any]],
    samples_sha256: str | None,
    *,
    errors: JudgeErrors | None = None,
) -> dict[str, Any]:
    """The Result dict of a run from run.json's content and its records (metrics only, no responses).

    ``records``: a list, or a re-iterable that reads them from disk (:class:`StoredRecords`): they are streamed
    (one pass for the metrics, counts and judge errors, one for the content hash), and only counts are kept --
    memory does not grow with the run. ``errors``: an empty :class:`JudgeErrors` for this run's judges, filled
    in the same pass (its ``first`` messages are the caller's run summary)."""
    from baselines.judgeval import JudgeErrors
    from baselines.metrics import Summary

    cfg = meta["config"]
    judges = [j["label"] for j in meta["judges"]]
    conds = {c["name"]: {"attack": c.get("attack"), "defense": c.get("defense")} for c in cfg["conditions"]}
    tally, decided, asked, counts = (
        Summary(judges, conditions=conds),
        _Decisions(),
        _Queries(),
        RecordCounts(),
    )
    errors = errors if errors is not None else JudgeErrors(judges)
    for r in records:
        tally.add(r)
        decided.add(r)
        asked.add(r)
        counts.add(r)
        errors.add(r)
    summary = tally.result()
    got = {c["condition"]: c for c in summary["conditions"]}
    empty = [
        {"judge": j, "asr": None, "refusal_rate_benign": None, "unjudged": 0, "per_category": {}}
        for j in judges
    ]
    decisions = decided.result()
    queries = asked.result()
    conditions = [
        {
            **(got.get(name) or {"condition": name, **conds[name], "n_samples": 0, "judges": empty}),
            "decisions": decisions.get(name, {}),
            **({"queries": queries[name]} if name in queries else {}),
        }
        for name in conds
    ]
    model_info = dict(meta.get("model_info") or {})
    labels = model_info.get("labels") or []
    partial, variant = scope(meta, records, counts=counts)
    return {
        "schema_version": 1,
        "baseline": cfg["baseline"],
        "paper_id": meta.get("paper_id"),
        "model": public_paths({"spec": cfg["model"], **model_info}),
        "dataset": public_dataset(meta["dataset"]),
        "defense": cfg["defense"]["name"] if cfg.get("defense") else None,
        # hashes are of the real configs; local paths in the published copies are hidden (public_path)
        "judges": [public_paths({**j, "sha256": config_sha256(j)}) for j in meta["judges"]],
        "conditions": conditions,
        "agreement": summary["agreement"],
        "differences": summary["differences"],
        "config": public_paths(cfg),
        "provenance": public_paths(
            {
                **provenance(meta, samples_sha256, records, counts=counts),
                "judge_errors": errors.result(),
            }
        ),
        "labels": [str(x) for x in labels] if isinstance(labels, list) else [str(labels)],
        "run_id": meta["run_id"],
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "variant": variant,
        "partial": partial,
    }


class StoredRecords:
    """The records of a run directory as a re-iterable: each ``iter()`` streams samples.jsonl again
    (:meth:`RunStore.iter_records`, without repairing the file), keeping those ``keep`` accepts. Lets
    :func:`build_result` and the run summary read a large run without holding its records."""

    def __init__(self, store: RunStore, keep: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.store = store
        self.keep = keep

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for r in self.store.iter_records(repair=False):
            if self.keep is None or self.keep(r):
                yield r


def merge_runs(
    run_dirs: list[Path], runs_dir: Path, *, allow_partial: bool = False
) -> tuple[dict[str, Any], Path]:
    """Combine shard runs of one configuration into one run directory and its Result.

    All shards must share the configuration (apart from ``shard``) and together cover 0..n-1, and each must
    hold a record for every (condition, selected sample) -- a shard cut short is refused (finish it by
    rerunning its command, which resumes) unless ``allow_partial``, which labels the Result partial.
    """
    from baselines.runconfig import RunConfig

    metas = [RunStore(d).read_meta() for d in run_dirs]
    configs = [RunConfig.model_validate(m["config"]) for m in metas]
    base = configs[0]
    for d, c in zip(run_dirs, configs, strict=True):
        if c.hash(without_shard=True) != base.hash(without_shard=True):
            raise RunStoreError(
                f"{d} is a run of another configuration than {run_dirs[0]}; cannot merge them"
            )
    shards = sorted(c.shard for c in configs if c.shard)
    n = base.shard[1] if base.shard else 1
    expected = [(i, n) for i in range(n)]
    if shards != expected:
        have = ", ".join(f"{i}/{k}" for i, k in shards) or "unsharded runs"
        raise RunStoreError(f"merge needs each shard 0/{n} .. {n - 1}/{n} exactly once; got {have}")
    short = []
    stores = [RunStore(d) for d in run_dirs]  # each checks its file once (the check is reused while unchanged)
    for d, st, m, c in zip(run_dirs, stores, metas, configs, strict=True):
        got = st.count_records()
        expected = int(m["dataset"]["n_samples"]) * len(c.conditions)
        if got < expected:
            i, k = c.shard or (0, 1)
            short.append(f"shard {i}/{k} ({d}) has {got} of {expected} records")
    if short and not allow_partial:
        raise RunStoreError(
            f"incomplete shards: {'; '.join(short)}. Finish each by rerunning its command (it resumes), or "
            "merge with --allow-partial to publish a result labelled partial"
        )
    merged_cfg = base.model_copy(update={"shard": None})
    out_dir = Path(runs_dir) / merged_cfg.run_id()
    store = RunStore(out_dir)
    store.dir.mkdir(parents=True, exist_ok=True)
    # streamed: the shards' records sorted by (condition, id) through temporary files, a pair's first record
    # (in the order the shards were given) kept -- memory does not grow with the run
    store.write_lines(_first_of_each(external_sort(_keyed_lines(merged_cfg, stores))))
    ds = dict(metas[0]["dataset"])
    ds["n_samples"] = sum(m["dataset"]["n_samples"] for m in metas)
    meta = {
        **metas[0],
        "run_id": merged_cfg.run_id(),
        "config": merged_cfg.model_dump(mode="json"),
        "dataset": ds,
    }
    meta["merged_from"] = [m["run_id"] for m in metas]
    store.write_meta(meta)
    return build_result(meta, StoredRecords(store), store.sha256()), out_dir


def _keyed_lines(cfg: Any, stores: list[RunStore]) -> Iterator[tuple[tuple[int, str], str]]:
    """Every shard's records, in the order given, as ``((condition index, id), line of samples.jsonl)``."""
    for st in stores:
        for r in st.iter_records(repair=False):
            key = (_cond_index(cfg, r["condition"]), str(r["id"]))
            yield key, json.dumps(r, sort_keys=True, ensure_ascii=False)


def _first_of_each(pairs: Iterable[tuple[Any, str]]) -> Iterator[str]:
    """The line of the first pair of each run of equal keys."""
    last: Any = object()
    for key, line in pairs:
        if key != last:
            last = key
            yield line


def _cond_index(cfg: Any, name: str) -> int:
    names = [c.name for c in cfg.conditions]
    return names.index(name) if name in names else len(names)
