"""DPS, Defense through Partial-Perception Supervision (Zhou et al., arXiv 2412.12722, ICML 2025).

Black-box and training-free: ``weak2strong.py::weak2strong`` of tools-only/DPS@72c004b (spec 22-defenses.md §4),
with the official multi-turn conversations, each sent whole to a model as ``Sample.meta["messages"]`` (the
project's conversation form, taken by the hf and openai back-ends; ``{"type": "image"}`` parts take the
sample's images in order):

1. strong agent (the protected model; system ``whole_observation``): the instruction with the full image;
2. partial views (``crop``; default ``auto_crop`` = three weak agents): #0 the full image with the text boxes the
   crop agent (system ``normal``) returns painted black, #1 the centre crop, #2 a random crop (JPEG round trip as
   the official saved files; see ``_dps_views``);
3. each weak agent (system ``local_observation``) answers the instruction on its view, then, in the same
   conversation, describes the view (with the view again);
4. the moderator (history cleared after each summary, kept after the teacher check, as officially) summarises a
   weak answer or description of more than 20 words (``len(x.split(" "))``) and asks the teacher check on the
   unsummarised answer: a reply containing "yes" picks the (summarised) answer, else the (summarised)
   description;
5. the strong agent, same conversation, text only, gets W1 (one view) or W3 (several) -> its analysis, which the
   moderator summarises;
6. the strong agent, same conversation, with the full image again, gets the final prompt F -> the answer.

Every prompt is read verbatim from ``data/dps_*`` (sources in ``data/SOURCES.md``). Each step is one batched call
per model over the samples at that step (the samples' conversations are independent). Samples without an image
are answered by the protected model directly (recorded ``applied: false``).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from PIL import Image
from pydantic import BaseModel, Field

from baselines.base import Defense, Model
from baselines.defenses import _dps_views as views
from baselines.defenses._wrapper import WrappedModel, query_config, read_data, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

#: Data files (exact bytes): the official ``config_prompt.json``, ``qwen_meta.json`` and ``Judge.json``, and the
#: f-string templates of ``weak2strong.py`` / ``util.py`` with their fields renamed to ``{name}`` placeholders.
DATA_FILES = ("dps_config_prompt.json", "dps_qwen_meta.json", "dps_judge.json", "dps_templates.json")

#: ``agent.py``'s ``debater_prompts_map``: agent role -> key of ``config_prompt.json``.
ROLE_PROMPT = {"normal": "normal", "local": "local_observation", "whole": "whole_observation"}

#: How many words a weak answer / description may have before the moderator summarises it (``length > 20``).
SUMMARY_WORDS = 20


def system_prompts() -> dict[str, str]:
    """``config_prompt.json``: whole_observation, local_observation and normal."""
    return json.loads(read_data("dps_config_prompt.json"))


def templates() -> dict[str, str]:
    """The official prompt templates (``{name}`` placeholders, filled by :func:`fill`)."""
    return json.loads(read_data("dps_templates.json"))


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` (``str.replace``: the templates hold literal
    braces, e.g. the mask prompt's ``{'obj1': ...}``). Every given name must occur."""
    for name, value in values.items():
        key = "{" + name + "}"
        if key not in template:
            raise KeyError(f"template has no placeholder {key}")
        template = template.replace(key, value)
    return template


def word_count(text: str) -> int:
    """The official length test: ``len(text.split(" "))`` (single spaces only, as ``weak2strong`` splits)."""
    return len(text.split(" "))


def teacher_says_yes(reply: str) -> bool:
    """The teacher check's parse: ``'yes' in reply.lower()`` (a substring test, as officially)."""
    return "yes" in reply.lower()


def mask_prompt(size: tuple[int, int]) -> str:
    """``auto_mask``'s question: ``notice + seg + "Direct give your answer:"`` for an image of ``size``."""
    t = templates()
    return fill(t["mask_notice"], shape=str([0, 0, size[0], size[1]])) + t["mask_seg"] + t["mask_suffix"]


def observations_prompt(observations: Sequence[str]) -> str:
    """W1 for one weak agent (the official ``weak_obs``, the last one), W3 (``", "``-joined) for several."""
    t = templates()
    if len(observations) == 1:
        return fill(t["observe_one"], weak_obs=observations[-1])
    joined = ", ".join(fill(t["observation_item"], n=str(i + 1), obs=o) for i, o in enumerate(observations))
    return fill(t["observe_many"], observations=joined)


class Conversation:
    """An agent's ``memory_lst``: the base message file with its system text set, then the turns.

    Debater agents (strong, weak, crop) start from ``qwen_meta.json`` (system content a list of one text part,
    its text replaced by ``set_system_prompt``); the moderator starts from ``Judge.json`` (string contents).
    User turns with an image are ``[text part, image part]`` (the official order); others one text part (debater)
    or a plain string (moderator). ``clear`` is ``clear_history`` (back to the system message)."""

    def __init__(self, base: list[dict[str, Any]], system: str | None = None, *, plain: bool = False) -> None:
        self.base = copy.deepcopy(base)
        if system is not None:
            self.base[0]["content"][0]["text"] = system
        self.plain = plain
        self.clear()

    def clear(self) -> None:
        """Back to the base message (``clear_history``)."""
        self.messages: list[dict[str, Any]] = copy.deepcopy(self.base)
        self.images: list[Image.Image] = []

    def user(self, text: str, images: Sequence[Image.Image] = ()) -> None:
        """Append a user turn (``_add_vlm_event`` / ``_add_llm_event``)."""
        if self.plain:
            if images:
                raise ValueError("the moderator takes no images")
            self.messages.append({"role": "user", "content": text})
            return
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        content += [{"type": "image"} for _ in images]
        self.messages.append({"role": "user", "content": content})
        self.images.extend(images)

    def assistant(self, text: str) -> None:
        """Append the model's reply (``memory_lst.append(message)``)."""
        self.messages.append({"role": "assistant", "content": text})


@dataclass
class Call:
    """One model query of a sample's DPS run: which model (``role``), which decoding (``kind``), the step name
    (for records and errors) and the whole conversation so far."""

    role: Literal["strong", "agent", "moderator"]
    kind: Literal["step", "final", "moderator"]
    step: str
    messages: list[dict[str, Any]]
    images: tuple[Image.Image, ...]
    text: str


def _call(conv: Conversation, role: str, kind: str, step: str) -> Call:
    last = conv.messages[-1]["content"]
    text = last if isinstance(last, str) else next(p["text"] for p in last if p["type"] == "text")
    return Call(role, kind, step, copy.deepcopy(conv.messages), tuple(conv.images), text)  # type: ignore[arg-type]


def _shortened(
    moderator: Conversation, template: str, text: str, step: str, info: dict[str, Any], key: str
) -> Generator[list[Call], list[str], str]:
    """``text``, or -- beyond ``SUMMARY_WORDS`` words -- the moderator's summary of it with ``template`` (one
    call, then the moderator's history is cleared, as the official loop does); a summary is kept in
    ``info[key]``."""
    if word_count(text) <= SUMMARY_WORDS:
        return text
    moderator.user(fill(template, content=text))
    (summary,) = yield [_call(moderator, "moderator", "moderator", step)]
    moderator.clear()
    info[key] = summary
    return summary


@register("defense")
class Dps(Defense):
    """DPS: weak agents answer about partial images; their observations supervise the strong agent's answer."""

    paper_id = "2024-zhou-defending-lvlms-vision"
    summary = (
        "DPS: weak agents answer on crops / a text-masked image; their observations make the model "
        "re-examine and re-answer (multi-turn)"
    )
    default_attack = "figstep"  # one of the paper's datasets (FigStep, HADES, MM-SafetyBench, ...)

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "agent and moderator models",
            "official": "strong, weak and crop agents = the same API LVLM (qwen-vl-plus / gpt-4o-mini / gemini-1.5-flash); moderator = gpt-4o-mini (JudgeAgent)",
            "ours": "agent='target' and moderator='target' (default): the protected model plays every role; either can be another model spec (e.g. moderator=openai:gpt-4o-mini)",
            "why": "offline default (no API); the agents are officially the protected model anyway",
            "effect": "with a weak moderator, summaries and the teacher check are of lower quality than GPT-4o-mini's",
        },
        {
            "what": "decoding",
            "official": "API default sampling (no temperature set); max_tokens=2000 for every LVLM call, none for the moderator",
            "ours": "the run's GenerationConfig (greedy by default, seeded); step_max_new_tokens=2000 for the intermediate LVLM calls, the run's max_new_tokens for the final answer (final_max_new_tokens) and for the moderator (moderator_max_new_tokens)",
            "why": "the harness compares conditions at one answer budget and decodes greedily; a local moderator needs a bound",
            "effect": "final answers can be shorter than officially; deterministic intermediate texts",
        },
        {
            "what": "random crop seed",
            "official": "Python's global random module, unseeded",
            "ours": "random.Random(f'{seed}:{sample id}') per sample, the same three draws in the same order",
            "why": "reproducible runs, independent of batching",
            "effect": "none on distribution; crops are repeatable",
        },
        {
            "what": "API errors",
            "official": "QwenAgent replaces a failed call by the reply 'Sorry, I can not assist with that.' and carries on (GPTAgent/JudgeAgent crash or append a bare string)",
            "ours": "a failed call ends the sample with Response.error naming the step (unjudged), never a canned refusal",
            "why": "the harness counts errors as unjudged, not as refusals",
            "effect": "API content-filter rejections are not counted as refusals",
        },
        {
            "what": "image transport",
            "official": "the whole image file's bytes; partial images saved as .jpg under fixed names (center_crop.jpg ...) and sent as files",
            "ours": "the sample's PIL image as the back-end encodes it; partial images JPEG round-tripped in memory (PIL defaults); non-JPEG modes (RGBA, P) converted to RGB first",
            "why": "no temp files (the official fixed names are unsafe under concurrency); the official save crashes on RGBA",
            "effect": "none for RGB inputs",
        },
        {
            "what": "samples without exactly one image",
            "official": "every item has one whole_image",
            "ours": "no image: the protected model answers directly (applied: false); several images: the strong agent's turns carry all of them, the partial views come from the first",
            "why": "no partial view exists without an image; weak2strong handles one image",
            "effect": "text-only conditions are undefended by DPS",
        },
        {
            "what": "assistant turns in the history",
            "official": "completion.choices[0].message.model_dump() (role, content and the API's null fields)",
            "ours": "{'role': 'assistant', 'content': text}",
            "why": "the back-ends take role and content only",
            "effect": "none",
        },
        {
            "what": "OmniSafeBench's version (not copied)",
            "official": "OmniSafeBench-MM defenses/dps.py: no strong initial answer, no system prompts (local_observation concatenated before the question), single-turn weak description and strong analysis, crop agent gpt-4o, final prompt F answered single-turn by the benchmark",
            "ours": "the official multi-turn weak2strong structure; crop agent = the agent model",
            "why": "the issue asks for the official structure",
            "effect": "numbers are not comparable with OmniSafeBench's DPS",
        },
    ]

    class Params(StrictParams):
        """DPS parameters (defaults from weak2strong.py and the demo notebook)."""

        crop: Literal["auto_crop", "crop", "random_crop"] = Field(
            "auto_crop",
            description="partial views: auto_crop (demo default: text mask + centre + random crop, 3 agents), "
            "crop (centre crop) or random_crop",
        )
        agent_number: int = Field(
            1, ge=1, description="weak agents for crop / random_crop (auto_crop always uses 3, as officially)"
        )
        agent: str = Field(
            "target",
            description="weak and crop agent model: 'target' (the protected model, official) or a spec",
        )
        agent_base_url: str | None = Field(None, description="endpoint of an openai:<model> agent")
        moderator: str = Field(
            "target",
            description="moderator (summaries, teacher check): 'target' or a spec (official gpt-4o-mini: "
            "openai:gpt-4o-mini)",
        )
        moderator_base_url: str | None = Field(None, description="endpoint of an openai:<model> moderator")
        step_max_new_tokens: int | None = Field(
            2000,
            ge=1,
            description="max_new_tokens of the intermediate LVLM calls (official max_tokens=2000); "
            "None = the run's value",
        )
        final_max_new_tokens: int | None = Field(
            None,
            ge=1,
            description="max_new_tokens of the final answer (None = the run's value; official 2000)",
        )
        moderator_max_new_tokens: int | None = Field(
            None,
            ge=1,
            description="max_new_tokens of moderator calls (None = the run's value; official: unset)",
        )
        seed: int = Field(0, description="seed of the random crop (per sample)")

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self._models: dict[str, Model] = {}

    @property
    def n_views(self) -> int:
        """Number of weak agents (``agent_number``; 3 for auto_crop)."""
        return 3 if self.params.crop == "auto_crop" else self.params.agent_number

    def role_model(self, role: str, target: Model) -> Model:
        """The model playing ``role`` ('agent' or 'moderator'): the protected model or one loaded once."""
        spec = getattr(self.params, role)
        if spec == "target":
            return target
        if role not in self._models:
            from baselines.models import load_model

            self._models[role] = load_model(spec, base_url=getattr(self.params, f"{role}_base_url"))
        return self._models[role]

    def wrap(self, model: Model) -> Model:
        """The model wrapped by DPS."""
        return _DpsModel(model, self)

    # -- one sample, as weak2strong runs it ------------------------------------------------------------------
    def conversation(self, sample: Sample) -> Generator[list[Call], list[str], tuple[str, dict[str, Any]]]:
        """weak2strong for one sample: yields the calls of each step (independent calls together) and receives
        their replies in order; returns the final answer and the record of every intermediate."""
        p = self.params
        t = templates()
        sys_prompts = system_prompts()
        base = json.loads(read_data("dps_qwen_meta.json"))
        whole = sample.images[0]
        instruction = sample.text
        rec: dict[str, Any] = {"applied": True, "crop": p.crop}

        strong = Conversation(base, sys_prompts[ROLE_PROMPT["whole"]])
        strong.user(instruction, sample.images)
        first = [_call(strong, "strong", "step", "strong_initial")]
        if p.crop == "auto_crop":
            cropper = Conversation(base, sys_prompts[ROLE_PROMPT["normal"]])
            cropper.user(mask_prompt(whole.size), (whole,))
            first.append(_call(cropper, "agent", "step", "crop_agent"))
        replies = yield first
        strong.assistant(replies[0])
        rec["initial_answer"] = replies[0]

        rng = random.Random(f"{p.seed}:{sample.id}")
        sub_images: list[Image.Image] = []
        view_rec: list[dict[str, Any]] = []
        for index in range(self.n_views):
            if p.crop == "crop" or (p.crop == "auto_crop" and index == 1):
                sub_images.append(views.center_crop(whole))
                view_rec.append({"view": "center_crop", "box": list(views.center_box(whole.size))})
            elif p.crop == "random_crop" or index == 2:
                box = views.random_box(whole.size, rng)
                sub_images.append(views.jpeg_roundtrip(whole.crop(box)))
                view_rec.append({"view": "random_crop", "box": list(box)})
            else:
                masked, boxes = views.auto_mask(whole, replies[1])
                sub_images.append(masked)
                view_rec.append({"view": "auto_mask", "boxes": boxes, "crop_agent_reply": replies[1]})
        rec["views"] = view_rec

        weak = [Conversation(base, sys_prompts[ROLE_PROMPT["local"]]) for _ in sub_images]
        for conv, img in zip(weak, sub_images, strict=True):
            conv.user(instruction, (img,))
        answers = yield [_call(c, "agent", "step", f"weak_answer_{i}") for i, c in enumerate(weak)]
        for conv, img, ans in zip(weak, sub_images, answers, strict=True):
            conv.assistant(ans)
            conv.user(t["describe"], (img,))
        descriptions = yield [_call(c, "agent", "step", f"weak_description_{i}") for i, c in enumerate(weak)]
        rec["weak_answers"], rec["weak_descriptions"] = list(answers), list(descriptions)

        moderator = Conversation(json.loads(read_data("dps_judge.json")), plain=True)
        observations: list[str] = []
        agents: list[dict[str, Any]] = []
        for index, (ans, desc) in enumerate(zip(answers, descriptions, strict=True)):
            info: dict[str, Any] = {}
            simple_answer = yield from _shortened(
                moderator, t["summarize_answer"], ans, f"summary_answer_{index}", info, "answer_summary"
            )
            simple_desc = yield from _shortened(
                moderator, t["summarize"], desc, f"summary_description_{index}", info, "description_summary"
            )
            moderator.user(fill(t["teacher"], content=ans))
            (verdict,) = yield [_call(moderator, "moderator", "moderator", f"teacher_{index}")]
            moderator.assistant(verdict)  # not cleared: the next summary (or the analysis summary) sees it
            info["teacher"] = verdict
            info["answer_used"] = teacher_says_yes(verdict)
            observations.append(simple_answer if info["answer_used"] else simple_desc)
            agents.append(info)
        rec["agents"] = agents

        supervision = observations_prompt(observations)
        rec["observations"] = supervision
        strong.user(supervision)
        (analysis,) = yield [_call(strong, "strong", "step", "strong_analysis")]
        strong.assistant(analysis)
        rec["strong_analysis"] = analysis
        moderator.user(fill(t["summarize"], content=analysis))
        (analysis_simple,) = yield [_call(moderator, "moderator", "moderator", "summary_analysis")]
        moderator.clear()
        rec["strong_analysis_simple"] = analysis_simple

        strong.user(fill(t["final"], analysis=analysis_simple, instruction=instruction), sample.images)
        (final,) = yield [_call(strong, "strong", "final", "strong_final")]
        return final, rec


class _DpsModel(WrappedModel):
    defense: Dps

    def info(self) -> dict[str, Any]:
        """The wrapped model's info, plus ``dps_models``: the info of a separate agent / moderator model."""
        info = super().info()
        p = self.params
        specs = {role: getattr(p, role) for role in ("agent", "moderator") if getattr(p, role) != "target"}
        if specs:
            info["dps_models"] = {
                role: self.defense._models[role].info() if role in self.defense._models else {"spec": spec}
                for role, spec in specs.items()
            }
        return info

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """DPS over a batch: every sample's conversation advances one step per round, each round one batched
        call per (model, decoding) over the samples' pending calls."""
        p = self.params
        t0 = time.perf_counter()
        configs = {
            "step": query_config(config, p.step_max_new_tokens),
            "final": query_config(config, p.final_max_new_tokens),
            "moderator": query_config(config, p.moderator_max_new_tokens),
        }
        models = {
            "strong": self.inner,
            "agent": self.defense.role_model("agent", self.inner),
            "moderator": self.defense.role_model("moderator", self.inner),
        }
        out: list[Response | None] = [None] * len(samples)
        n_calls = [0] * len(samples)
        plain = [i for i, s in enumerate(samples) if not s.images]
        if plain:
            for i, r in zip(plain, self.inner.generate([samples[i] for i in plain], config), strict=True):
                out[i] = with_meta(r, "dps", {"applied": False, "reason": "no image", "n_calls": 1})
        gens = {i: self.defense.conversation(s) for i, s in enumerate(samples) if s.images}
        pending = {i: g.send(None) for i, g in gens.items()}
        finals: dict[int, Response] = {}
        while pending:
            groups: dict[tuple[int, str], list[tuple[int, int, Call]]] = {}
            for i, calls in pending.items():
                for j, c in enumerate(calls):
                    groups.setdefault((id(models[c.role]), c.kind), []).append((i, j, c))
            replies: dict[int, list[Response | None]] = {i: [None] * len(c) for i, c in pending.items()}
            for (_, kind), items in groups.items():
                model = models[items[0][2].role]
                batch = [
                    Sample(
                        id=f"{samples[i].id}/dps/{c.step}",
                        text=c.text,
                        goal=samples[i].goal,
                        images=c.images,
                        category=samples[i].category,
                        label=samples[i].label,
                        meta={"messages": c.messages},
                    )
                    for i, _, c in items
                ]
                for (i, j, _), r in zip(items, model.generate(batch, configs[kind]), strict=True):
                    replies[i][j] = r
            nxt: dict[int, list[Call]] = {}
            for i, calls in pending.items():
                rs = replies[i]
                n_calls[i] += len(calls)
                bad = next(((c, r) for c, r in zip(calls, rs, strict=True) if r is None or r.error), None)
                if bad is not None:
                    gens[i].close()
                    err = bad[1].error if bad[1] is not None else "no response"
                    out[i] = Response(
                        sample_id=samples[i].id,
                        text="",
                        error=f"dps step {bad[0].step}: {err}",
                        meta={"dps": {"applied": True, "failed_step": bad[0].step, "n_calls": n_calls[i]}},
                    )
                    continue
                try:
                    nxt[i] = gens[i].send([r.text for r in rs])  # type: ignore[union-attr]
                except StopIteration as stop:
                    _, rec = stop.value
                    rec["n_calls"] = n_calls[i]
                    final = rs[-1]
                    assert final is not None
                    finals[i] = replace(final, sample_id=samples[i].id, meta={**final.meta, "dps": rec})
            pending = nxt
        elapsed = time.perf_counter() - t0
        for i, r in finals.items():
            out[i] = r
        share = elapsed / max(len(samples), 1)
        return [replace(r, latency_s=share) for r in out if r is not None]
