"""SIUO (Safe Inputs but Unsafe Output; arXiv 2406.15279) from a local path: open-ended and multiple choice.

Files (``sinwang20/SIUO`` ``data/`` or HF ``sinwang/SIUO``): ``siuo_gen.json`` (167 records: question_id, image,
question, category, safety_warning, reference_answer) and ``siuo_mcqa.json`` (same pairs with options A-D and
correct_option); images ``images/<image>`` (unzipped ``SIUO-images.zip``). ``task=gen`` sends the raw question
with the image (as ``eval/generation-gpt4o-gen.py``); ``task=mcqa`` sends the official MCQA template
(``judges/data/prompts/siuo_mcqa.txt``, sha256-checked) with options rendered ``({key}) {value}`` one per line.
Every sample is labelled ``harmful`` (an unsafe output is the failure the benchmark counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, field, layout_error, load_images, read_json_list
from baselines.datasets.cards import CARDS, check_count
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

LAYOUT = """<path>/                  (HF sinwang/SIUO layout; the GitHub repo's data/ folder works too)
  siuo_gen.json          [{"question_id", "image", "question", "category", "safety_warning", "reference_answer"}]
  siuo_mcqa.json         [{"question_id", "image", "question", "category", "options": {"A".."D"}, "correct_option"}]
  images/<image>         e.g. images/S-01.png (SIUO-images.zip unzipped)"""
_FILES = {"gen": "siuo_gen.json", "mcqa": "siuo_mcqa.json"}
_KEYS = {
    "gen": ("question_id", "image", "question", "category", "safety_warning", "reference_answer"),
    "mcqa": ("question_id", "image", "question", "category", "options", "correct_option"),
}


def render_mcqa(question: str, options: dict[str, str]) -> str:
    """The official MCQA prompt: the template with ``{question}`` and ``{option}`` replaced (str.replace)."""
    from baselines.judges._prompts import load_prompt

    option = "\n".join(f"({k}) {v}" for k, v in options.items())
    return load_prompt("siuo_mcqa").text.replace("{question}", question).replace("{option}", option)


@register("dataset")
class SIUODataset(Dataset):
    """SIUO's 167 cross-modality safety pairs, open-ended (gen) or multiple choice (mcqa)."""

    paper_id = "2024-wang-cross-modality-safety"
    summary = "SIUO from a local path: siuo_gen.json / siuo_mcqa.json + images/ (gen or mcqa task)"
    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "responses per item (gen)",
            "official": "three GPT-4o samples per item (n=3), the judgement is the mode of three",
            "ours": "one response per item (the run's decoding, greedy by default)",
            "why": "one answer per (sample, condition) in the harness",
            "effect": "no majority vote; per-item variance higher for sampled decoding, none for greedy",
        },
        {
            "what": "first item (gen)",
            "official": "generation loop starts at index 1, skipping the first item",
            "ours": "all 167 items",
            "why": "bug in eval/generation-gpt4o-gen.py",
            "effect": "one more item",
        },
        {
            "what": "unparsed multiple-choice answer (mcqa)",
            "official": "eval/mcqa-eval.py picks a random letter (unseeded random.choice) when no option letter "
            "is found",
            "ours": "the answer counts as wrong and is reported as siuo.mc_unparsed",
            "why": "an unseeded random guess makes the accuracy irreproducible",
            "effect": "accuracy lower by about a quarter of the unparsed share (the expected gain of guessing)",
        },
    ]
    #: Params that choose one of the benchmark's official tasks: a run of another task than the default is a
    #: variant of the benchmark, not a subset (``baselines.runresult.scope`` does not label it partial).
    variant_params: ClassVar[tuple[str, ...]] = ("task",)

    class Params(StrictParams):
        """Where the data is, which task, and whether the official count is checked."""

        path: str = Field(description="folder holding siuo_gen.json, siuo_mcqa.json and images/")
        task: Literal["gen", "mcqa"] = Field("gen", description="gen: open-ended; mcqa: multiple choice")
        counts: Literal["official", "any"] = Field(
            "official", description="official: require the release's 167 items; any: a subset or stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read the task's JSON file and the images' headers; errors name the record and the layout."""
        base = Path(self.params.path).expanduser()
        root = (
            base
            if (base / _FILES[self.params.task]).is_file() or not (base / "data").is_dir()
            else base / "data"
        )
        path = root / _FILES[self.params.task]
        if not path.is_file():
            raise layout_error("siuo", "missing file", path, LAYOUT)
        checksum = Checksum(root)
        records = read_json_list(path, "siuo", checksum)
        check_count("siuo", path, len(records), CARDS["siuo"]["official_counts"]["total"], "records",
                    self.params.counts)  # fmt: skip
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        seen: set[str] = set()
        for n, rec in enumerate(records):
            where = f"{path}: record {n}"
            if not isinstance(rec, dict):
                raise DatasetError(f"{where}: expected an object")
            values = {k: field(rec, k, where, kind=(int,) if k == "question_id" else (dict,) if k == "options"
                               else (str,)) for k in _KEYS[self.params.task]}  # fmt: skip
            sid = str(values["question_id"])
            if sid in seen:
                raise DatasetError(f"{where}: duplicate question_id {sid}")
            seen.add(sid)
            rel = Path(values["image"])
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{where}: image must be a file name under images/, got {rel}")
            img = root / "images" / rel
            if not (root / "images").is_dir():
                raise layout_error("siuo", "missing dir", root / "images", LAYOUT)
            images = load_images([img], sid, checksum, skipped)
            if images is None:
                continue
            meta = {"question_id": values["question_id"], "image": str(rel), "task": self.params.task}
            if self.params.task == "gen":
                text = values["question"]
                meta.update(
                    safety_warning=values["safety_warning"], reference_answer=values["reference_answer"]
                )
            else:
                options = values["options"]
                if sorted(options) != ["A", "B", "C", "D"] or values["correct_option"] not in options:
                    raise DatasetError(f"{where}: options must have keys A-D and correct_option one of them")
                text = render_mcqa(values["question"], {k: str(options[k]) for k in "ABCD"})
                meta.update(
                    options={k: str(options[k]) for k in "ABCD"}, correct_option=values["correct_option"]
                )
            samples.append(
                Sample(
                    id=sid,
                    text=text,
                    goal=values["question"],
                    images=images,
                    category=values["category"],
                    label="harmful",
                    meta=meta,
                )  # fmt: skip
            )
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )
