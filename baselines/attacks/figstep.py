"""FigStep (Gong et al., arXiv 2311.05608, AAAI 2025): typographic visual prompts, plus FigStep-Pro.

The harmful instruction, phrased as a declarative list heading ("Steps to ..."), is rendered as black
typewriter text followed by an empty numbered list "1. 2. 3." on a white 760x760 image; a fixed, benign
text prompt (the "incitement prompt") asks the model to fill in the list. Black-box: no gradients.

Rendering (``baselines.typography``: ``figstep_text``, ``figstep_drawn``) follows the official
``src/generate_prompts.py`` (ThuCCSLab/FigStep @ 0861b17b): strip one trailing
newline, ``textwrap.fill(text, width=15)``, append ``f"\\n{idx}. "`` for idx 1..3 (note the trailing
space), draw with FreeMonoBold size 80 at xy (20, 10), line spacing 11, on a 760x760 white canvas (long text
is clipped, as in the original).

Where the instruction comes from (the project's rule):
1. ``sample.meta["instruction"]`` when present (SafeBench and the bundled set carry the official-style
   declarative instruction);
2. otherwise it is derived from the question by :func:`derive_instruction`: a trailing "?"/"." is dropped,
   then "How do/can/should I|you|one|we <X>" and "How to <X>" become "Steps to <X>.", "What are (some|the)
   ways|methods|steps|techniques to|for <X>" becomes "Methods to <X>.", "Can|Could|Would you (please) <X>"
   becomes "Steps to <X>.", and any other question becomes "Steps to address this: <question>.".

FigStep-Pro (README sections 2.2 and 7) cuts the typographic image of the harmful *keyword* into pieces and
sends them together with a verbatim text prompt that asks the model to concatenate them. The official
splitting rule is unpublished; the project's rule (``baselines.typography.keyword_pieces``) renders the keyword on
one line (FreeMonoBold 80, canvas height 120, as in the released pieces) and cuts it at glyph boundaries
into three pieces of as-equal-as-possible character counts (the prompt says "three images").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Attack, Model
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample
from baselines.typography import figstep_drawn, figstep_text, font_file, keyword_pieces

DATA_DIR = Path(__file__).parent / "data" / "figstep"
PRO_PLACEHOLDER = "{Steps to *.}"
PRO_PIECES = 3


def read_prompt(file_name: str) -> str:
    """A verbatim prompt from ``data/figstep``: the text after the ``# ---`` header line, minus the final newline."""
    raw = (DATA_DIR / file_name).read_text(encoding="utf-8")
    marker = "# ---\n"
    if marker not in raw:
        raise ValueError(f"{DATA_DIR / file_name}: missing the '# ---' line that ends the header")
    body = raw.split(marker, 1)[1]
    return body[:-1] if body.endswith("\n") else body


@cache
def incitement_prompt() -> str:
    """The FigStep incitement text prompt, verbatim."""
    return read_prompt("incitement_prompt.txt")


@cache
def figstep_pro_prompt() -> str:
    """The FigStep-Pro text prompt template, verbatim (first line ``{Steps to *.}`` is the placeholder)."""
    return read_prompt("figstep_pro_prompt.txt")


_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^how (?:do|can|could|would|should|might|may) (?:i|you|one|we|someone) (.+)$", re.I),
        "Steps to",
    ),
    (re.compile(r"^how to (.+)$", re.I), "Steps to"),
    (
        re.compile(r"^what are (?:some |the )?(?:ways|methods|steps|techniques|tips) (?:to|for) (.+)$", re.I),
        "Methods to",
    ),
    (re.compile(r"^(?:can|could|would|will) you (?:please )?(.+)$", re.I), "Steps to"),
]


def derive_instruction(question: str) -> str:
    """A FigStep-style declarative instruction from a question (rule in the module docstring)."""
    q = question.strip().rstrip("?.!").strip()
    for pattern, prefix in _RULES:
        m = pattern.match(q)
        if m:
            return f"{prefix} {m.group(1).strip()}."
    return f"Steps to address this: {q}."


def derive_keyword(instruction: str) -> str:
    """The keyword of an instruction: it without a leading "Steps/Methods/Ways to" or "List of" and final "."."""
    kw = re.sub(r"^(?:steps|methods|ways) to |^list of ", "", instruction.strip(), flags=re.I)
    return kw.rstrip(".").strip() or instruction.strip()


def pro_sentence(instruction: str, keyword: str) -> str:
    """The first line of the FigStep-Pro prompt: the instruction with the keyword replaced by ``*``."""
    idx = instruction.lower().find(keyword.lower())
    if keyword and idx >= 0:
        return instruction[:idx] + "*" + instruction[idx + len(keyword) :]
    m = re.match(r"^(steps|methods|ways) to ", instruction.strip(), flags=re.I)
    return f"{m.group(0) if m else 'Steps to '}*."


@register("attack")
class FigStep(Attack):
    """FigStep: the instruction as a typographic image of an empty numbered list + the incitement prompt."""

    paper_id = "2023-gong-figstep"
    #: ``apply`` is a pure function of its samples (no state, no randomness): the endpoint request pipeline
    #: (baselines.requestpool) renders several batches at once on threads (tested: same images as in series)
    thread_safe = True
    summary = (
        "Typographic visual prompt: the instruction + empty list '1. 2. 3.' as an image, benign text prompt."
    )

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "FigStep-Pro keyword split",
            "official": "unpublished rule; the released sub-figures cut each keyword into 3-7 pieces (sub-figures.zip)",
            "ours": "the keyword on one line (FreeMonoBold 80, 120 px high), cut at glyph boundaries into 3 pieces of near-equal character counts (typography.keyword_pieces)",
            "why": "the splitting rule is not in the repository; the prompt asks to concatenate three images",
            "effect": "FigStep-Pro pieces differ from the released ones, so how readable the split keyword is differs too",
        },
        {
            "what": "instruction of samples without one",
            "official": "SafeBench's instruction column, written by GPT-4 with the paper's Prompt 2 (not released)",
            "ours": "meta['instruction'] when present (SafeBench, bundled set), else the rule-based derive_instruction",
            "why": "Prompt 2 is not published and the project runs offline",
            "effect": "only on datasets without an instruction field: the drawn heading is a rule-based rephrasing",
        },
    ]

    class Params(StrictParams):
        """FigStep parameters (defaults from the official code)."""

        variant: Literal["figstep", "figstep_pro"] = Field(
            "figstep", description="figstep (one image) or figstep_pro (keyword split into sub-images)"
        )
        font: str = Field("FreeMonoBold", description="bundled font name or a .ttf path")
        font_size: int = Field(80, gt=0, description="font size in pixels")
        canvas: int = Field(760, gt=0, description="side of the square white canvas in pixels")
        wrap_width: int = Field(15, gt=0, description="textwrap.fill width (characters)")
        spacing: int = Field(11, ge=0, description="extra pixels between lines")

    def instruction_for(self, sample: Sample) -> tuple[str, str]:
        """(instruction, where it came from: 'meta' or 'derived')."""
        inst = sample.meta.get("instruction")
        if isinstance(inst, str) and inst.strip():
            return inst, "meta"
        return derive_instruction(sample.goal or sample.text), "derived"

    def attack_one(self, sample: Sample) -> Sample:
        """The attacked version of one sample (same id, goal, label, category)."""
        p = self.params
        instruction, source = self.instruction_for(sample)
        meta = {
            "attack": self.name,
            "variant": p.variant,
            "instruction": instruction,
            "instruction_source": source,
            "font_file": font_file(p.font),
            "font_size": p.font_size,
        }
        if p.variant == "figstep":
            drawn = figstep_drawn(
                figstep_text(instruction, p.wrap_width), p.font, p.font_size, p.canvas, p.spacing
            )
            image = drawn.render()
            return sample.with_(text=incitement_prompt(), images=(image,), meta=meta)
        kp = sample.meta.get("key_phrase")
        keyword = kp.strip() if isinstance(kp, str) and kp.strip() else derive_keyword(instruction)
        images = keyword_pieces(keyword, p.font, p.font_size, PRO_PIECES)
        text = figstep_pro_prompt().replace(PRO_PLACEHOLDER, pro_sentence(instruction, keyword), 1)
        meta.update(keyword=keyword, n_pieces=len(images))
        return sample.with_(text=text, images=tuple(images), meta=meta)

    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """Attacked samples, one per input, in order (the model is not queried)."""
        return [self.attack_one(s) for s in samples]
