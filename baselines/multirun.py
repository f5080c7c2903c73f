"""Several runs in one process: `mllm-safety run figstep ecso hades ...` or `mllm-safety run plan.yaml`.

Each run is an ordinary run (its own run directory, resume, result, write-back); what they share is the
process, so torch and transformers are imported once, and the model: the runs execute inside
:func:`baselines.models.shared_models`, where loading a model that an earlier run of the sequence already loaded
(same spec and Params) returns that model. A model no later run needs is released before the next run.

A plan file is YAML: ``runs:`` lists entries, each a baseline name or a mapping of `mllm-safety run` options
(RunRequest field names: ``baseline``, ``attack``, ``defense``, ``dataset``, ``judges``, ``limit``, ``sets``,
...). The command line's options apply to every entry; an entry's own options win, except ``sets``, which are
added after the command line's (``--set model.dtype=bfloat16`` for all, ``sets: [variant=figstep_pro]`` for
one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baselines.runconfig import RunConfig, RunConfigError
from baselines.runrequest import RunRequest

PLAN_SUFFIXES = (".yaml", ".yml")


def is_plan(arg: str) -> bool:
    """Whether a positional argument of `run` names a plan file (a .yaml/.yml path) rather than a baseline."""
    return arg.endswith(PLAN_SUFFIXES)


def read_plan(path: Path, read: Callable[[Path], Any]) -> list[dict[str, Any]]:
    """The entries of a plan file as option mappings (``read`` parses YAML: the CLI passes the catalog's
    hardened loader). A malformed plan raises RunConfigError naming the file and the entry."""
    path = Path(path)
    if not path.is_file():
        raise RunConfigError(f"plan file not found: {path}")
    try:
        data = read(path)
    except ValueError as e:
        raise RunConfigError(f"{path}: not a valid YAML plan ({e})") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not runs:
        raise RunConfigError(f"{path}: expected a mapping with a non-empty list under 'runs:'")
    if set(data) - {"runs"}:
        raise RunConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(set(data) - {'runs'}))}")
    out = []
    for i, entry in enumerate(runs, 1):
        if isinstance(entry, str):
            entry = {"baseline": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("baseline"), str):
            raise RunConfigError(f"{path}: run {i} must be a baseline name or a mapping with 'baseline:'")
        unknown = set(entry) - set(RunRequest.model_fields)
        if unknown:
            raise RunConfigError(
                f"{path}: run {i} ({entry['baseline']}): unknown option(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(RunRequest.model_fields)}"
            )
        out.append(dict(entry))
    return out


def build_requests(entries: Sequence[dict[str, Any]], shared: dict[str, Any]) -> list[RunRequest]:
    """One RunRequest per entry: the shared (command-line) choices, overridden by the entry's own; ``sets``
    add up. Every request is validated before any run starts (a typo in the third run fails at once)."""
    requests = []
    for i, entry in enumerate(entries, 1):
        choices = {k: v for k, v in shared.items() if v is not None and k != "baseline"}
        for k, v in entry.items():
            choices[k] = [*(choices.get("sets") or []), *v] if k == "sets" else v
        try:
            requests.append(RunRequest.parse(**choices))
        except RunConfigError as e:
            raise RunConfigError(f"run {i} ({entry.get('baseline')}): {e}") from None
    return requests


def configs_of(requests: Sequence[RunRequest]) -> list[RunConfig]:
    """Each request's RunConfig (errors name the run)."""
    from baselines.params import ParamsError
    from baselines.registry import UnknownComponentError

    out = []
    for i, r in enumerate(requests, 1):
        try:
            out.append(r.config())
        except (RunConfigError, ParamsError, UnknownComponentError) as e:
            raise RunConfigError(f"run {i} ({r.baseline}): {e}") from None
    return out


def model_keys(configs: Sequence[RunConfig]) -> list[tuple[str, str]]:
    """The shared-model key of each config's model (what :func:`baselines.models.load_model` caches)."""
    from baselines.models import model_key

    return [model_key(c.model, base_url=c.base_url, params=c.model_params) for c in configs]


def run_sequence(
    configs: Sequence[RunConfig],
    run_one: Callable[[int, RunConfig], int],
    *,
    stop_codes: tuple[int, ...] = (130,),
) -> tuple[list[int], int]:
    """Run ``run_one(i, config)`` for each config in order, inside one shared-models scope; after each run,
    release the models no later run uses. Stops early when a run returns one of ``stop_codes`` (Ctrl-C).
    Returns (each run's exit code, models loaded)."""
    from baselines.models import shared_models

    keys = model_keys(configs)
    codes: list[int] = []
    with shared_models() as shared:
        for i, config in enumerate(configs):
            code = run_one(i, config)
            codes.append(code)
            if code in stop_codes:
                break
            shared.retain(set(keys[i + 1 :]))
        return codes, shared.loads
