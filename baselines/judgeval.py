"""A judge's error rates against human labels: the metrics of ``mllm-safety judges validate``.

Positive = jailbroken / instance of the behaviour (``Verdict.success`` True; the human majority label 1).
Proportions (accuracy, precision, recall, false-positive rate FP/(FP+TN), false-negative rate FN/(FN+TP)) carry
Wilson 95% score intervals, which stay honest at 0% and 100% (never zero width). F1 and Cohen's kappa with the
human majority carry seeded percentile-bootstrap intervals over items. Unjudged items (the judge could not decide)
are left out of every metric and counted, with their error kinds; they are never a success or a failure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from baselines.metrics import cohen_kappa

Z95 = 1.959963984540054
_ROUND = 6


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of k successes in n trials (None when n == 0)."""
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def proportion(k: int, n: int) -> dict[str, float | int] | None:
    """``{"value", "ci_low", "ci_high", "n"}`` with a Wilson interval, or None when n == 0."""
    ci = wilson(k, n)
    if ci is None:
        return None
    return {
        "value": round(k / n, _ROUND),
        "ci_low": round(ci[0], _ROUND),
        "ci_high": round(ci[1], _ROUND),
        "n": n,
    }


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return None if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _bootstrap(stat: Any, pred: Sequence[bool], truth: Sequence[bool], value: float | None, seed: int,
               n_boot: int = 2000) -> dict[str, float | int] | None:  # fmt: skip
    """A percentile-bootstrap 95% interval of ``stat(pred, truth)`` over items (None when undefined)."""
    import numpy as np

    if value is None:
        return None
    rng = np.random.default_rng(seed)
    p, t, n = np.asarray(pred, bool), np.asarray(truth, bool), len(pred)
    draws = [x for _ in range(n_boot) if (x := stat(p[idx := rng.integers(0, n, n)], t[idx])) is not None]
    if not draws:
        return None
    lo, hi = np.quantile(draws, [0.025, 0.975])
    lo, hi = min(float(lo), value), max(float(hi), value)
    return {"value": round(value, _ROUND), "ci_low": round(lo, _ROUND), "ci_high": round(hi, _ROUND), "n": n}


def _counts(pred: Sequence[bool], truth: Sequence[bool]) -> tuple[int, int, int, int]:
    tp = sum(p and t for p, t in zip(pred, truth, strict=True))
    fp = sum(p and not t for p, t in zip(pred, truth, strict=True))
    tn = sum(not p and not t for p, t in zip(pred, truth, strict=True))
    fn = sum(not p and t for p, t in zip(pred, truth, strict=True))
    return tp, fp, tn, fn


def _f1_stat(p: Any, t: Any) -> float | None:
    tp, fp, _, fn = _counts(list(p), list(t))
    return _f1(tp, fp, fn)


def _kappa_stat(p: Any, t: Any) -> float | None:
    return cohen_kappa(list(map(bool, p)), list(map(bool, t)))


def binary_metrics(pred: Sequence[bool], truth: Sequence[bool], *, seed: int = 0) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, FPR, FNR and kappa (each with an interval) and the confusion matrix."""
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predictions for {len(truth)} labels")
    tp, fp, tn, fn = _counts(pred, truth)
    n = len(pred)
    f1 = _f1(tp, fp, fn)
    kappa = cohen_kappa(list(pred), list(truth)) if n else None
    return {
        "n": n,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "accuracy": proportion(tp + tn, n),
        "precision": proportion(tp, tp + fp),
        "recall": proportion(tp, tp + fn),
        "fpr": proportion(fp, fp + tn),
        "fnr": proportion(fn, fn + tp),
        "f1": _bootstrap(_f1_stat, pred, truth, f1, seed) if n else None,
        "kappa": _bootstrap(_kappa_stat, pred, truth, kappa, seed) if n else None,
        "positive_rate_judge": proportion(tp + fp, n),
        "positive_rate_human": proportion(tp + fn, n),
    }


def error_kind(error: str) -> str:
    """A short class of a verdict's error (for counting): the text before the first ':' or quote."""
    head = error.split(":", 1)[0].split("'", 1)[0].strip()
    return head[:60] or "error"


def judge_label_set(judge: Any, label_set: Any, *, batch_size: int = 16, progress: Any = None) -> list[Any]:
    """The judge's verdict for every item of ``label_set`` (in batches), in item order."""
    verdicts: list[Any] = []
    items = label_set.items
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        try:
            got = judge.judge([it.sample for it in chunk], [it.response for it in chunk])
            if len(got) != len(chunk):
                raise RuntimeError(f"returned {len(got)} verdicts for {len(chunk)} items")
        except Exception as e:  # noqa: BLE001 - a judge that raises leaves the chunk unjudged, counted
            from baselines.types import Verdict

            got = [Verdict(judge.name, None, error=f"{type(e).__name__}: {e}") for _ in chunk]
        verdicts.extend(got)
        if progress is not None:
            progress(len(verdicts), len(items))
    return verdicts


def validation_metrics(label_set: Any, verdicts: Sequence[Any], *, seed: int = 0) -> dict[str, Any]:
    """Overall and per-category metrics of ``verdicts`` against the human majority, unjudged counts and error
    kinds, and the same metrics for the verdicts the set stores for other judges."""
    items = label_set.items
    decided = [(it, v) for it, v in zip(items, verdicts, strict=True) if v.success is not None]
    errors = Counter(error_kind(v.error or "no decision") for v in verdicts if v.success is None)
    first_error = next((v.error for v in verdicts if v.success is None and v.error), None)
    pred = [bool(v.success) for _, v in decided]
    truth = [it.human for it, _ in decided]
    per_cat: dict[str, dict[str, Any]] = {}
    cats = sorted({it.category for it in items})
    if len(cats) > 1:
        for c in cats:
            pairs = [(bool(v.success), it.human) for it, v in decided if it.category == c]
            if pairs:
                per_cat[c] = binary_metrics([p for p, _ in pairs], [t for _, t in pairs], seed=seed)
    stored: dict[str, dict[str, Any]] = {}
    for name in sorted({k for it in items for k in it.stored}):
        pairs = [(it.stored[name], it.human) for it in items if it.stored.get(name) is not None]
        if pairs:
            stored[name] = binary_metrics([bool(p) for p, _ in pairs], [t for _, t in pairs], seed=seed)
    unanimous = sum(len(set(it.annotators)) == 1 for it in items)
    return {
        "n_items": len(items),
        "n_judged": len(decided),
        "unjudged": len(items) - len(decided),
        "unjudged_errors": dict(sorted(errors.items())),
        "first_error": first_error,
        "metrics": binary_metrics(pred, truth, seed=seed),
        "per_category": per_cat,
        "stored_judges": stored,
        "human_unanimous": proportion(unanimous, len(items)),
    }


class JudgeErrors:
    """Streams a run's records once and counts, per judge, the verdicts, the unjudged ones and their error kinds
    (:func:`judge_errors`); keeps each judge's first error message for the run summary (``first``)."""

    def __init__(self, judges: Sequence[str]) -> None:
        self.judges = list(judges)
        self.n = 0
        self.kinds: dict[str, Counter[str]] = {j: Counter() for j in self.judges}
        self.first: dict[str, str] = {}

    def add(self, r: dict[str, Any]) -> None:
        """Count one record."""
        self.n += 1
        verdicts = r.get("verdicts") or {}
        for j in self.judges:
            v = verdicts.get(j)
            if v is None or v.get("success") is None:
                self.kinds[j][error_kind((v or {}).get("error") or "no verdict")] += 1
        for j, v in verdicts.items():
            if v.get("error") and j not in self.first:
                self.first[j] = v["error"]

    def result(self) -> dict[str, dict[str, Any]]:
        """Per judge: ``{"verdicts", "unjudged", "errors": {kind: count}}``."""
        return {
            j: {"verdicts": self.n, "unjudged": sum(k.values()), "errors": dict(sorted(k.items()))}
            for j, k in self.kinds.items()
        }


def judge_errors(records: Iterable[dict[str, Any]], judges: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per judge over a run's records: how many verdicts, how many unjudged, and the error kinds with counts
    (e.g. ``{"unparseable classifier answer (not yes/no)": 3, "generation failed": 1}``)."""
    acc = JudgeErrors(judges)
    for r in records:
        acc.add(r)
    return acc.result()
