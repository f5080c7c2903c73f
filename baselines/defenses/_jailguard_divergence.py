"""JailGuard's response-divergence test (``JailGuard/utils/utils.py``, ``similarity.py``; BASELINES.md §10.2).

``S[i, j]`` = similarity of responses i and j (each cut to its first 100 characters), clipped below at 0.01;
for i != j, ``D[i, j] = KL(S[i]/sum S[i] || S[j]/sum S[j])``, clipped above at 100; attack iff ``max D``
exceeds the threshold (image default 0.025), otherwise iff every response contains a refusal keyword.

Similarity: the official code uses spaCy ``en_core_web_md`` (``doc.similarity``: 1.0 for identical token
sequences, 0.0 when a vector is empty, else the cosine of the mean word vectors). ``similarity="spacy"`` uses it
when spaCy and that model are installed. The offline default ``"bow"`` substitutes a deterministic hashed
bag-of-words vector (lower-cased word tokens, BLAKE2 hashing into 2**16 buckets) with the same three rules; it
has no notion of synonyms, so the 0.025 threshold (tuned on spaCy vectors) is stricter in effect.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from baselines.base import BackendError

_WORD = re.compile(r"\w+|[^\w\s]")
TRUNCATE = 100


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def _bucket(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.lower().encode(), digest_size=8).digest(), "big") % (1 << 16)


def bow_similarity(a: str, b: str) -> float:
    """spaCy-style document similarity with hashed bag-of-words vectors (see module docstring)."""
    ta, tb = _tokens(a), _tokens(b)
    if ta == tb:
        return 1.0
    va, vb = Counter(_bucket(t) for t in ta), Counter(_bucket(t) for t in tb)
    na = math.sqrt(sum(v * v for v in va.values()))
    nb = math.sqrt(sum(v * v for v in vb.values()))
    if na == 0 or nb == 0:
        return 0.0
    return sum(v * vb[k] for k, v in va.items()) / (na * nb)


def spacy_similarity(model: str = "en_core_web_md") -> Callable[[str, str], float]:
    """spaCy's ``doc.similarity`` with ``model``; a clear error when spaCy or the model is not installed."""
    try:
        import spacy

        nlp = spacy.load(model)
    except (ImportError, OSError) as e:
        raise BackendError(
            f"jailguard similarity='spacy' needs spaCy and its model {model!r} installed locally "
            f"(pip install spacy, then install the {model} package); or use similarity='bow'. ({e})"
        ) from None

    def sim(a: str, b: str) -> float:
        return float(nlp(a).similarity(nlp(b)))

    return sim


def divergence_matrix(
    responses: Sequence[str], similarity: Callable[[str, str], float] = bow_similarity
) -> np.ndarray:
    """The (n, n) matrix D of pairwise KL divergences between rows of the clipped similarity matrix."""
    texts = [r[:TRUNCATE] for r in responses]
    n = len(texts)
    s = np.array([[similarity(texts[i], texts[j]) for j in range(n)] for i in range(n)], dtype=np.float64)
    s = np.clip(s, 0.01, None)
    p = s / s.sum(axis=1, keepdims=True)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                d[i, j] = float(np.sum(p[i] * np.log(p[i] / p[j])))
    return np.clip(d, None, 100.0)


def detect(
    responses: Sequence[str],
    refusal_counts: Sequence[int],
    threshold: float,
    similarity: Callable[[str, str], float] = bow_similarity,
) -> dict:
    """JailGuard's decision: ``{"detected", "max_divergence", "all_block"}`` for one input's variant answers."""
    d = divergence_matrix(responses, similarity)
    max_d = float(d.max()) if d.size else 0.0
    all_block = bool(refusal_counts) and min(refusal_counts) >= 1
    return {"detected": bool(max_d > threshold or all_block), "max_divergence": max_d, "all_block": all_block}
