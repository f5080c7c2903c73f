"""The deviations ledgers of a run's components (``Component.deviations``), as copied into a result's provenance.

Every registered component declares, next to its code, how it departs from the official code (what, official,
ours, why, expected effect) or ``[]`` for none; ``tests/test_ledger.py`` fails for one that has not written it.
A result carries the ledger of every component its run used, so a number is never separated from the caveats
that qualify it.
"""

from __future__ import annotations

from typing import Any

from baselines import registry


def component_ledger(kind: str, name: str) -> list[dict[str, str]] | None:
    """The ledger of a registered component (None: not written, or the component is not registered)."""
    if name not in registry.names(kind):
        return None
    got = registry.get(kind, name).deviations
    return None if got is None else [dict(d) for d in got]


def run_ledger(config: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"kind", "name", "deviations"}]`` for the model back-end, dataset, attack, defense and judges of a
    RunConfig dict (in that order, each component once)."""
    from baselines.models import parse_spec

    try:
        backend = parse_spec(config["model"])[0]
    except Exception:  # noqa: BLE001 - a spec no back-end parses (e.g. a test double): its prefix, not registered
        backend = str(config["model"]).split(":", 1)[0]
    used: list[tuple[str, str]] = [("model", backend)]
    used.append(("dataset", config["dataset"]["name"]))
    for kind in ("attack", "defense"):
        spec = config.get(kind)
        if spec:
            used.append((kind, spec["name"]))
    for cond in config.get("conditions") or []:
        if cond.get("attack"):
            used.append(("attack", cond["attack"]))
    used += [("judge", j["name"]) for j in config.get("judges") or []]
    seen: set[tuple[str, str]] = set()
    out = []
    for kind, name in used:
        if (kind, name) not in seen:
            seen.add((kind, name))
            out.append({"kind": kind, "name": name, "deviations": component_ledger(kind, name)})
    return out
