"""MM-SafetyBench from a local copy of its ``data/`` folder (BASELINES.md §2.3-2.5).

``processed_questions/<scenario>.json`` maps ids ("0", "1", ...) to ``{"Question", "Key Phrase",
"Rephrased Question", "Rephrased Question(SD)", ...}``; images are ``imgs/<scenario>/{SD,TYPO,SD_TYPO}/<id>.jpg``.
Pairing (README): SD image + ``Rephrased Question(SD)``; TYPO or SD_TYPO image + ``Rephrased Question``;
``image_kind=none`` gives the text-only baseline (``Question`` without image). ``goal`` is always the
original ``Question``. Scenarios 08 and 10-13 are judged by MM-SafetyBench on refusal/disclaimer, not harm;
``meta["eval_template"]`` names the template the benchmark uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, field, layout_error, load_images, read_json, require
from baselines.datasets.safebench import find_data_dir
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

LAYOUT = """<path>/                                  (the MM-SafetyBench repo's data/ folder; the repo root also works)
  processed_questions/01-Illegal_Activitiy.json   {"0": {"Question", "Key Phrase", "Rephrased Question",
  processed_questions/...                                "Rephrased Question(SD)", ...}, "1": ...}
  imgs/01-Illegal_Activitiy/SD/0.jpg
  imgs/01-Illegal_Activitiy/TYPO/0.jpg
  imgs/01-Illegal_Activitiy/SD_TYPO/0.jpg
  TinyVersion_ID_List.json                        (only with tiny=true)"""
_TEXT_KEY = {"SD": "Rephrased Question(SD)", "TYPO": "Rephrased Question", "SD_TYPO": "Rephrased Question"}
_TEMPLATES = {
    "08": "political_lobbing",
    "10": "legal",
    "11": "financial",
    "12": "health",
    "13": "gov_decision",
}


@register("dataset")
class MMSafetyBenchDataset(Dataset):
    """MM-SafetyBench questions paired with one image kind (or text only), from a local path."""

    paper_id = "2023-liu-mm-safetybench"
    summary = "MM-SafetyBench from a local path: processed_questions/*.json + imgs/<scenario>/<kind>/<id>.jpg"

    deviations: ClassVar[list[dict[str, str]]] = []  # none: reads the official files as they are

    class Params(StrictParams):
        """Where the data is, which image kind, which scenarios."""

        path: str = Field(description="the MM-SafetyBench repo's data/ folder (or the repo root)")
        image_kind: Literal["SD_TYPO", "SD", "TYPO", "none"] = Field(
            "SD_TYPO", description="image kind paired with its rephrased question; none = text-only Question"
        )
        scenarios: list[str] | None = Field(
            None, description="scenario names or 2-digit prefixes (None: all)"
        )
        tiny: bool = Field(False, description="only the ids of TinyVersion_ID_List.json (168 questions)")

    def load(self) -> LoadedDataset:
        """Read the question files (and images); errors name the file and the expected layout."""
        root = find_data_dir(Path(self.params.path).expanduser(), "processed_questions")
        qdir = require(root / "processed_questions", "mmsafetybench", LAYOUT, kind="dir")
        files = sorted(qdir.glob("*.json"))
        if not files:
            raise layout_error("mmsafetybench", "no <scenario>.json files in", qdir, LAYOUT)
        checksum = Checksum(root)
        wanted = self.params.scenarios
        if wanted is not None:
            files = [f for f in files if f.stem in wanted or f.stem[:2] in wanted]
            if not files:
                raise DatasetError(f"mmsafetybench: no scenario matches {wanted} in {qdir}")
        tiny_ids = self._tiny_ids(root, checksum) if self.params.tiny else None
        kind = self.params.image_kind
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        for f in files:
            scenario = f.stem
            data = read_json(f, "mmsafetybench", checksum)
            if not isinstance(data, dict):
                raise DatasetError(f"{f}:1: expected an object mapping ids to questions")
            if kind != "none":
                require(root / "imgs" / scenario / kind, "mmsafetybench", LAYOUT, kind="dir")
            for qid, item in data.items():
                if tiny_ids is not None and qid not in tiny_ids.get(scenario, set()):
                    continue
                where = f"{f}: id {qid!r}"
                if not isinstance(item, dict):
                    raise DatasetError(f"{where}: expected an object")
                question = field(item, "Question", where)
                text = question if kind == "none" else field(item, _TEXT_KEY[kind], where)
                sid = f"{scenario}/{qid}"
                images: tuple = ()
                if kind != "none":
                    loaded = load_images(
                        [root / "imgs" / scenario / kind / f"{qid}.jpg"], sid, checksum, skipped
                    )
                    if loaded is None:
                        continue
                    images = loaded
                meta = {
                    "question_id": qid,
                    "key_phrase": item.get("Key Phrase"),
                    "rephrased": item.get("Rephrased Question"),
                    "rephrased_sd": item.get("Rephrased Question(SD)"),
                    "image_kind": kind,
                    "eval_template": _TEMPLATES.get(scenario[:2], "safety"),
                }
                samples.append(
                    Sample(id=sid, text=text, goal=question, images=images, category=scenario, meta=meta)
                )
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(root), skipped=skipped
        )

    def _tiny_ids(self, root: Path, checksum: Checksum) -> dict[str, set[str]]:
        path = require(root / "TinyVersion_ID_List.json", "mmsafetybench", LAYOUT)
        data = read_json(path, "mmsafetybench", checksum)
        try:
            return {e["Scenario"]: {str(i) for i in e["Sampled_ID_List"]} for e in data}
        except (TypeError, KeyError) as e:
            raise DatasetError(
                f"{path}: expected a list of {{'Scenario': str, 'Sampled_ID_List': [int]}} ({e})"
            ) from None
