"""QGuard's risk score: per-question P(yes) aggregated by a weighted PageRank graph (``qguard/graph.py``).

Spec 22-defenses.md §6.3: a directed graph with a node per guard question and per category; edges question ->
category weighted by clip(P(yes), 0, 1), one 0.1 edge per pair of categories, one 0.3 edge q_i -> q_j (i < j) per pair
of questions of a category (file order). PageRank with networkx's defaults (damping 0.85, uniform teleport,
dangling nodes teleport uniformly, tol 1e-6 x N, at most 100 iterations), computed here with numpy exactly as
``nx.pagerank``'s power iteration does. risk = sum over nodes of pr[n] x (sum of n's out-edge weights).

Category-pair order: the official code iterates ``itertools.combinations`` over a Python *set* of category names,
so the direction of the 0.1 edges follows the process's string-hash order (``PYTHONHASHSEED``) and the score
changes from run to run. ``order="file"`` (ours, default) orders categories as the question file does;
``order="hash"`` reproduces the official rule (``list(set(groups))`` in this process).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

CATEGORY_EDGE = 0.1
QUESTION_EDGE = 0.3


def category_order(groups: Sequence[str], order: str) -> list[str]:
    """Categories in file order, or in this process's set-iteration order (the official rule)."""
    if order == "hash":
        return list(set(groups))
    return list(groups)


def build_edges(
    p_yes: Mapping[str, Sequence[float]], order: str = "file"
) -> tuple[list[str], list[tuple[str, str, float]]]:
    """(nodes, weighted edges) of the QGuard graph. ``p_yes``: category -> P(yes) of its questions in file
    order; question nodes are named ``category#index``."""
    nodes: list[str] = []
    edges: list[tuple[str, str, float]] = []
    for cat, probs in p_yes.items():
        qs = [f"{cat}#{i}" for i in range(len(probs))]
        nodes += qs
        for q, pr in zip(qs, probs, strict=True):
            edges.append((q, cat, min(max(float(pr), 0.0), 1.0)))
        for a, b in itertools.combinations(qs, 2):
            edges.append((a, b, QUESTION_EDGE))
    cats = category_order(list(p_yes), order)
    nodes += cats
    for g1, g2 in itertools.combinations(cats, 2):
        edges.append((g1, g2, CATEGORY_EDGE))
    return nodes, edges


def pagerank(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str, float]],
    alpha: float = 0.85,
    max_iter: int = 100,
    tol: float = 1.0e-6,
) -> dict[str, float]:
    """networkx's weighted PageRank (power iteration, row-normalised weights, dangling -> uniform)."""
    import numpy as np

    idx = {n: i for i, n in enumerate(nodes)}
    n = len(nodes)
    a = np.zeros((n, n))
    for u, v, w in edges:
        a[idx[u], idx[v]] += w
    s = a.sum(axis=1)
    nz = s != 0
    a[nz] = a[nz] / s[nz, None]
    dangling = ~nz
    x = np.full(n, 1.0 / n)
    p = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        last = x
        x = alpha * (x @ a + x[dangling].sum() * p) + (1 - alpha) * p
        if np.abs(x - last).sum() < n * tol:
            return dict(zip(nodes, x.tolist(), strict=True))
    raise RuntimeError(f"pagerank did not converge in {max_iter} iterations")


def risk_score(p_yes: Mapping[str, Sequence[float]], order: str = "file") -> float:
    """The QGuard risk: sum over nodes of PageRank x out-weight."""
    nodes, edges = build_edges(p_yes, order)
    pr = pagerank(nodes, edges)
    out_w: dict[str, float] = {}
    for u, _, w in edges:
        out_w[u] = out_w.get(u, 0.0) + w
    return float(sum(pr[node] * out_w.get(node, 0.0) for node in nodes))
