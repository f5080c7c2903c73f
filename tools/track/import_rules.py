"""Deterministic keyword rules that suggest catalog facets from a paper's title and the lists' notes.

Used by ``tools/track/import_literature.py``. The rules only read the title and the short labels that curated lists
attach to a paper, so they are suggestions (papers tagged this way get ``suggested: true``); the papers the
project implements are tagged by hand in ``tools/track/import_overrides.yaml`` instead.
Every rule is a regular expression over the lower-cased ``title + notes``; the order of the rules is the order
of the terms in the output.
"""

from __future__ import annotations

import re
from typing import Any

Rule = tuple[str, str]  # (term id, regex)

ATTACK_TECHNIQUES: list[Rule] = [
    (
        "adversarial-perturbation",
        r"adversarial (attack|example|image|perturbation|patch|noise)|adversarial\b(?! training| fine)"
        r"|perturbation|gradient|\bpgd\b|universal attack|transferab",
    ),
    ("typographic", r"typograph|\bocr\b|figstep|visual prompt(?!ing)|text (in|within) (the )?image"),
    ("query-relevant-image", r"query.relevant|query.related|mm-safetybench|generated image"),
    ("role-play", r"role.?play|\bpersonas?\b|hypnosis|scenario|gamif|game"),
    (
        "composition",
        r"composition|compositional|pieces|split|shuffle|divide and conquer|obfuscat|distribut"
        r"|conceal|linkage|scattered|distraction|sequential",
    ),
    ("prompt-injection", r"prompt.injection|injection|goal hijack|hijacking context"),
    ("backdoor", r"backdoor|poison|trojan"),
    ("embedding-space", r"embedding|encoder level|vision encoder|feature"),
    ("multi-turn", r"multi.turn|multi.round|dialogue"),
    ("automated-red-teaming", r"red.team|automat|multi.agent|themselves|self.adversarial|reinforce"),
    ("text-jailbreak-transfer", r"llm.jailbreak|from llms to mllms|dan command|jailbreak prompt attack"),
    (
        "reasoning-exploit",
        r"reasoning|chain.of.thought|of.thought|pictorial code|flowchart|logic jailbreak|puzzle",
    ),
    ("steganography", r"steganograph|transparency|invisible|hidden ghost"),
    ("membership-inference", r"membership.inference"),
    ("privacy-inference", r"private attribute|attribute profiling|geolocation|doxing|privacy leak"),
    ("resource-exhaustion", r"verbose|energy.latency|resource consumption|endless loop|action.freezing"),
    ("physical", r"physical"),
    (
        "agent-hijacking",
        r"\bagents?\b|\bgui\b|\bweb\b|robot|embodied|vision.language.action|\bvla\b|driving"
        r"|navigation",
    ),
    ("over-refusal-induction", r"refusing safe prompts"),
]

DEFENSE_KINDS: list[Rule] = [
    ("safety-fine-tuning", r"fine.tun(?!ing attack)|instruction tuning|safety alignment|alignment dataset"),
    ("preference-alignment", r"preference|rlhf|\bdpo\b|reinforce"),
    ("adversarial-training", r"adversarial (training|fine.tun)|defense.attack training|adversarial fine"),
    (
        "prompting",
        r"shield prompt|soft prompt|safety prompt|prompting|prompt optimization|reminder|suffix"
        r"|blue team|constitutional|instructed to",
    ),
    ("input-transformation", r"image.to.text|purif|denois|transformation|quantization|prune"),
    ("detection", r"detect|monitoring|jailneuron|scoring"),
    ("output-filtering", r"output level|protector|filter"),
    ("guard-model", r"guard(?!ing)|guardrail|moderation|shieldgemma"),
    ("decoding-time", r"decoding|inference.time alignment"),
    ("unlearning", r"unlearn|eras(e|er|ing)"),
    (
        "representation-engineering",
        r"steer|activation|representation|attention head|hidden state|neuron"
        r"|subspace|meta token|internal|mechanis|cross.model guidance|single vector|layer.wise|token distribution",
    ),
    ("backdoor-defense", r"backdoor|poison"),
    ("robust-encoder", r"\bclip\b|robust encoder|sim.clip"),
]

TRAINING_KINDS = {
    "safety-fine-tuning",
    "preference-alignment",
    "adversarial-training",
    "unlearning",
    "robust-encoder",
}
TRAINING_WORDS = r"fine.tun|training|tuning|rlhf|\bdpo\b|unlearn|alignment for|align and interact"
INFERENCE_WORDS = r"inference|test.time|training.free|without parameter update|at runtime|plug"

EVAL_MEASURES: list[Rule] = [
    ("jailbreak-robustness", r"jailbreak|red.team|attack"),
    ("harmful-content", r"safety|harm|unsafe|\bsafe\b"),
    ("over-refusal", r"oversensitiv|over.refus|refusing safe|safety calibration"),
    ("privacy", r"privacy|private|geolocation|personal information"),
    ("bias-fairness", r"\bbias|stereotyp|fairness"),
    ("toxicity", r"toxic|hate|meme|extremist|abuse"),
    (
        "cross-modal-safety",
        r"cross.modal|situational|joint multimodal|visual leakage|across modalities|blind faith"
        r"|safety awareness",
    ),
    ("adversarial-robustness", r"adversarial|robustness"),
    ("prompt-injection-robustness", r"prompt injection|goal hijack"),
    ("backdoor-robustness", r"backdoor|poison"),
    (
        "agent-safety",
        r"\bagents?\b|embodied|driving|robot|vision.language.action|\bvla\b|computer.use|smartphone",
    ),
    ("guard-accuracy", r"guard|moderation|classifier|detection"),
    ("value-alignment", r"human values|\bvalues\b|ethic"),
    ("trustworthiness", r"trustworth"),
]

HARM_CATEGORIES: list[Rule] = [
    ("hate-speech", r"hate|hateful"),
    ("privacy", r"privacy|private|geolocation|personal information"),
    ("terrorism", r"extremis|terror"),
    ("sexual-content", r"sexual|nsfw"),
    ("self-harm", r"self.harm|suicid"),
    ("health-consultation", r"medical|health"),
    ("bias-discrimination", r"\bbias|stereotyp"),
    ("misinformation", r"misinformation|disinformation"),
]

MODALITIES: list[Rule] = [
    ("video", r"video|egocentric"),
    ("audio", r"audio|sound"),
    ("multi-image", r"multi.image|image sequence|multiple images"),
    ("dialogue", r"multi.turn|dialogue|m\+d"),
    ("embodied", r"\bagents?\b|embodied|driving|robot|\bgui\b|\bweb\b|vision.language.action|\bvla\b"),
]

MODELS: list[Rule] = [
    ("gpt-4v", r"gpt-4v"),
    ("gpt-4o", r"gpt-4o"),
    ("bard", r"\bbard\b"),
    ("gemini", r"gemini"),
    ("claude-3", r"claude"),
    ("llavaguard", r"llavaguard"),
    ("llava", r"\bllava(?!guard|shield)"),
    ("minigpt-4", r"minigpt"),
    ("clip", r"\bclip\b"),
    ("llama-guard-3-11b-vision", r"llama guard 3 vision"),
    ("shieldgemma-2", r"shieldgemma 2"),
]


def _match(rules: list[Rule], text: str) -> list[str]:
    return [term for term, rx in rules if re.search(rx, text)]


def attack_facets(text: str) -> dict[str, list[str]]:
    """Threat model, surface and techniques suggested for an attack paper."""
    tech = _match(ATTACK_TECHNIQUES, text)
    threat: list[str] = []
    if re.search(r"white.box|gradient|generator level", text) or (
        "adversarial-perturbation" in tech and not re.search(r"black.box|transfer", text)
    ):
        threat.append("white-box")
    if re.search(r"gr[ae]y.box|encoder level|vision encoder", text):
        threat.append("gray-box")
    black_techniques = {
        "typographic",
        "query-relevant-image",
        "role-play",
        "composition",
        "reasoning-exploit",
        "text-jailbreak-transfer",
        "automated-red-teaming",
        "steganography",
    }
    if re.search(r"black.box|transfer|input level|query.based|commercial|deployed", text) or (
        set(tech) & black_techniques
    ):
        threat.append("black-box")
    surface: list[str] = []
    if re.search(
        r"bi.?modal|cross.modal|image & text|images and text|image and text|visual perturbation and "
        r"textual|multimodal universal|universal multimodal|multi.modal linkage",
        text,
    ) or ("composition" in tech):
        surface.append("image+text")
    elif set(tech) & {
        "adversarial-perturbation",
        "typographic",
        "query-relevant-image",
        "steganography",
        "physical",
        "prompt-injection",
    }:
        surface.append("image")
    elif "text-jailbreak-transfer" in tech:
        surface.append("text")
    return {"threat_model": threat, "surface": surface, "techniques": tech}


def defense_facets(text: str) -> dict[str, list[str]]:
    """Stage and kind suggested for a defense paper."""
    kinds = _match(DEFENSE_KINDS, text)
    if "adversarial-training" in kinds and "safety" not in text:  # adversarial fine-tuning is not safety SFT
        kinds = [k for k in kinds if k != "safety-fine-tuning"]
    stage: list[str] = []
    if re.search(TRAINING_WORDS, text) or set(kinds) & TRAINING_KINDS:
        stage.append("training")
    if re.search(INFERENCE_WORDS, text) or set(kinds) - TRAINING_KINDS:
        stage.append("inference")
    return {"stage": stage, "kind": kinds}


def evaluation_facets(text: str, has_code: bool) -> dict[str, Any]:
    """Measures, harm categories, modalities and release status suggested for an evaluation paper."""
    mods = _match(MODALITIES, text)
    if not (mods == ["video"] and "image" not in text) and "text-llm" not in text:
        mods = ["image", *mods]  # every paper in scope is about image+text models unless it is video-only
    out: dict[str, Any] = {
        "measures": _match(EVAL_MEASURES, text),
        "harm_categories": _match(HARM_CATEGORIES, text),
        "modalities": mods,
    }
    if has_code and re.search(r"bench|dataset|suite|benchmark", text):
        out["dataset_released"] = True
    return out


def model_terms(title: str) -> list[str]:
    """Model ids named by a title."""
    return _match(MODELS, title.lower())
