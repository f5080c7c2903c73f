"""Suggest a paper's category and facets from its title and abstract (keyword rules; a human confirms them).

The category comes from weighted keyword rules (a hit in the title counts three times a hit in the
abstract). The facets come from the importer's rules (``tools.track.import_rules``) plus the names and
aliases of the vocabulary terms themselves (``catalog/vocab``), and only terms that exist in the loaded
vocabularies are kept, so a suggestion is always a valid catalog entry. Every suggestion carries the reasons
that produced it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tools.catalog.schema import Vocabulary
from tools.track import import_rules as rules

# (category, regex, weight): evidence that the paper's main contribution is of this kind
CATEGORY_RULES: list[tuple[str, str, float]] = [
    ("survey", r"\bsurvey\b|\bsok\b|systematization of knowledge|literature review|\boverview of\b", 4.0),
    ("survey", r"\b(we|this paper) (review|summari[sz]e)|taxonomy of", 1.5),
    ("attack", r"\bjailbreak(s|ing)?\b|\bjailbroken\b", 1.5),
    ("attack", r"\battacks?\b|adversarial (example|image|perturbation|patch)s?|red.teaming attack", 1.0),
    (
        "attack",
        r"we (propose|introduce|present) (a |an )?(novel |new |simple |effective )*\w*[- ]?(attack|jailbreak)",
        3.0,
    ),
    ("attack", r"\b(backdoor|poison(ing)?|hijack(ing|s)?|prompt injection|bypass(es|ing)?)\b", 1.0),
    (
        "defense",
        r"\b(defen[cs]es?|defend(ing|s)?|safeguard(s|ing)?|guardrails?|mitigat(e|es|ing|ion))\b",
        1.5,
    ),
    (
        "defense",
        r"\b(safety alignment|align(ing)? .{0,30}safety|protect(s|ing|ion)?|shield|guard model)\b",
        1.0,
    ),
    (
        "defense",
        r"we (propose|introduce|present) (a |an )?(novel |new |simple |effective )*\w*[- ]?(defen[cs]e|framework to (defend|protect|mitigate))",
        3.0,
    ),
    ("defense", r"training.free|plug.and.play|fine.tun\w+ .{0,40}(safer|safety)", 0.5),
    (
        "defense",
        r"\b(against|resist\w*|robust\w* to|detect\w*|immuni[sz]\w*) .{0,40}(attacks?|jailbreak\w*)",
        3.0,
    ),
    (
        "defense",
        r"\b(unlearn\w*|steer\w*|purif\w*|detect(or|ing|ion)|moderation|safe(r|ty)? (alignment|tuning|decoding))",
        1.5,
    ),
    ("defense", r"\b(safeguard\w*|align\w*|secur(e|ing)|robustif\w*|self.reflect\w*|safety.aware)\b", 1.0),
    ("evaluation", r"\bbenchmark(s|ing)?\b|\bevaluat(e|es|ing|ion)\b|\bdataset\b|test suite", 1.0),
    (
        "evaluation",
        r"we (propose|introduce|present|construct|build) (a |an )?(novel |new |comprehensive |large.scale )*\w*[- ]?(benchmark|dataset|evaluation)",
        3.0,
    ),
    (
        "evaluation",
        r"\b(how (safe|robust|well)|are .{0,40}\?|red.team\w*|probing|exploring|investigat\w*)",
        1.5,
    ),
    ("evaluation", r"\b(safety (of|in)|trustworth\w*|risks? of|vulnerabilit\w*|leaderboard)\b", 1.0),
    (
        "evaluation",
        r"empirical (study|analysis)|systematic(ally)? (evaluat|assess)|\bassess(ment|es|ing)?\b",
        1.0,
    ),
]
FACET_BLOCKS = {
    "attack": {
        "threat_model": "threat_models",
        "surface": "attack_surfaces",
        "techniques": "attack_techniques",
    },
    "defense": {"stage": "defense_stages", "kind": "defense_kinds"},
    "evaluation": {
        "measures": "eval_measures",
        "harm_categories": "harm_categories",
        "modalities": "modalities",
    },
}


@dataclass
class Suggestion:
    """Suggested category, secondary categories, facet blocks and models, with the reasons."""

    category: str
    also: list[str] = field(default_factory=list)
    facets: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def paper_fields(self) -> dict[str, Any]:
        """The fields to merge into a Paper dict (category, also, facet blocks, models, suggested)."""
        out: dict[str, Any] = {"category": self.category, "suggested": True}
        if self.also:
            out["also"] = self.also
        out.update(self.facets)
        if self.models:
            out["models"] = self.models
        return out


def category_scores(title: str, abstract: str) -> dict[str, float]:
    """Score of each category; title hits weigh three times abstract hits."""
    scores = {"evaluation": 0.0, "attack": 0.0, "defense": 0.0, "survey": 0.0}
    t, a = title.lower(), abstract.lower()
    for cat, rx, weight in CATEGORY_RULES:
        scores[cat] += weight * (3 * len(re.findall(rx, t)) + min(len(re.findall(rx, a)), 4))
    return scores


def _term_index(vocab: Vocabulary) -> list[tuple[str, str]]:
    """(term id, regex) for every term's id, name and aliases (whole words, case-insensitive)."""
    out = []
    for term in vocab.terms:
        names = {term.id.replace("-", " "), term.name, *term.aliases}
        parts = []
        for name in names:
            words = re.sub(r"\s*\(.*?\)", "", name).strip().lower()
            if len(words) < 4:  # too short to match safely (e.g. "OCR" is fine, "MM" is not)
                if not re.fullmatch(r"[a-z]{3}", words):
                    continue
            parts.append(r"\b" + re.escape(words).replace(r"\ ", r"[\s\-]") + r"\b")
        if parts:
            out.append((term.id, "|".join(parts)))
    return out


def _known(terms: list[str], vocab: Vocabulary | None) -> list[str]:
    if vocab is None:
        return []
    valid = {t.id for t in vocab.terms}
    return [t for t in dict.fromkeys(terms) if t in valid]


def suggest(title: str, abstract: str, vocab: dict[str, Vocabulary], *, has_code: bool = False) -> Suggestion:
    """Category, ``also``, facets and models suggested for a paper (terms restricted to ``vocab``)."""
    scores = category_scores(title, abstract)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(scores).index(kv[0])))
    best, top = ranked[0]
    if top <= 0:
        best = "other"
    reasons = [f"category {best}: keyword score " + ", ".join(f"{c} {s:g}" for c, s in ranked)]
    also = [c for c, s in ranked[1:] if best != "other" and c != "survey" and s >= max(3.0, 0.6 * top)]
    if best == "survey":
        also = []
    text = f"{title}. {abstract}".lower()
    from_rules = {
        "attack": rules.attack_facets(text),
        "defense": rules.defense_facets(text),
        "evaluation": rules.evaluation_facets(text, has_code),
    }
    facets: dict[str, dict[str, Any]] = {}
    for block in [b for b in (best, *also) if b in FACET_BLOCKS]:
        out: dict[str, Any] = {}
        for fld, vocab_name in FACET_BLOCKS[block].items():
            v = vocab.get(vocab_name)
            found = list(from_rules[block].get(fld, []))
            if v is not None:
                found += [tid for tid, rx in _term_index(v) if re.search(rx, text)]
            terms = _known(found, v)
            if terms:
                out[fld] = terms
        if block == "defense" and re.search(r"training.free", text) and "stage" in out:
            if not set(out.get("kind", [])) & rules.TRAINING_KINDS:  # "training-free" is not training
                out["stage"] = [t for t in out["stage"] if t != "training"] or ["inference"]
        if block == "evaluation" and from_rules["evaluation"].get("dataset_released"):
            out["dataset_released"] = True
        if out:
            facets[block] = out
            reasons.append(f"{block} facets from keyword rules and vocabulary names over title + abstract")
    models: list[str] = []
    if "models" in vocab:
        models = _known(rules.model_terms(text), vocab["models"])
    return Suggestion(best, also, facets, models, reasons)
