"""Human-labelled judge-validation sets, read from a local path in their official formats.

Each loader returns a :class:`LabelSet`: items of (Sample, Response, human majority label, annotator labels,
category) plus the verdicts the set itself stores for other judges (recomputed beside ours as a sanity check).
Positive = the response is a successful jailbreak / an instance of the behaviour (what ``Verdict.success``
means). Nothing is downloaded: get the files with the commands in each loader's docstring.

- ``jbb``: JailbreakBench ``judge_comparison`` (``data/judge-comparison.csv`` of the HF dataset
  ``JailbreakBench/JBB-Behaviors``, config ``judge_comparison``): 300 rows, columns ``Index, goal, prompt,
  target_response, human1, human2, human3, human_majority, harmbench_cf, gpt4_cf, llamaguard2_cf, llama3_cf``. The
  judge sees ``goal`` and ``target_response`` (as JailbreakBench's judges do). Text only, no categories.
- ``harmbench_text``: HarmBench ``data/classifier_val_sets/text_behaviors_val_set.json`` (BehaviorID -> items with
  ``generation``, ``human_0..2``, stored judges ``cls``, ``cls_mistral``, ...) resolved through
  ``data/behavior_datasets/harmbench_behaviors_text_all.csv`` (``Behavior``, ``ContextString``, ``Tags``,
  ``SemanticCategory``, ``BehaviorID``); contextual behaviours carry their context in ``Sample.meta["context"]``.
- ``harmbench_multimodal``: ``data/classifier_val_sets/multimodal_behaviors_val_set.json`` (items with
  ``test_case = [image path, behaviour text]``, ``generation``, ``image_description``, ``human_0..2``, stored
  ``mistral_cls``, ``llama_cls``, ``gpt``, ``advbench_label``); the behaviours CSV
  ``harmbench_behaviors_multimodal_all.csv`` is used when present (categories). The attack images are loaded from
  ``images_root`` when they exist (``image_description`` goes to ``Sample.meta`` either way).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.types import Response, Sample

JBB_COLUMNS = ["Index", "goal", "prompt", "target_response", "human1", "human2", "human3", "human_majority",
               "harmbench_cf", "gpt4_cf", "llamaguard2_cf", "llama3_cf"]  # fmt: skip
JBB_STORED = {"harmbench_cf": "harmbench-llama2-cls", "gpt4_cf": "gpt-4", "llamaguard2_cf": "llama-guard-2",
              "llama3_cf": "jbb-llama-3-70b"}  # fmt: skip
HB_TEXT_STORED = {"cls": "harmbench-llama2-cls", "cls_mistral": "harmbench-mistral-cls", "llama_guard": "llama-guard",
                  "advbench": "advbench-keywords", "GPTFuzz": "gptfuzz", "gpt-4-0613": "gpt-4-0613"}  # fmt: skip
HB_MM_STORED = {"llama_cls": "harmbench-llama2-cls", "mistral_cls": "harmbench-mistral-cls", "gpt": "gpt-4v",
                "advbench_label": "advbench-keywords"}  # fmt: skip
LABEL_SETS = ("jbb", "harmbench_text", "harmbench_multimodal")


class LabelSetError(ValueError):
    """A label file is missing or not in the official format; the message names the file and the layout."""


@dataclass
class LabelledItem:
    """One human-labelled (request, response) pair."""

    sample: Sample
    response: Response
    human: bool
    annotators: list[int]
    category: str = "uncategorized"
    stored: dict[str, bool | None] = field(default_factory=dict)


@dataclass
class LabelSet:
    """A loaded validation set and its provenance."""

    name: str
    format: str
    source: str
    checksum: str
    items: list[LabelledItem]
    notes: list[str] = field(default_factory=list)


def _sha256(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _binary(value: Any, where: str) -> int:
    try:
        v = int(float(str(value).strip()))
    except ValueError:
        raise LabelSetError(f"{where}: expected 0 or 1, got {value!r}") from None
    if v not in (0, 1):
        raise LabelSetError(f"{where}: expected 0 or 1, got {value!r}")
    return v


def _stored(value: Any) -> bool | None:
    """A stored judge output as a boolean: 0/1, yes/no, '... Answer: Yes', 'Rating: [[k]]' (k = 10), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value) if value in (0, 1) else None
    if not isinstance(value, str):
        return None
    low = value.strip().lower()
    if low in ("1", "yes", "unsafe", "true"):
        return True
    if low in ("0", "no", "safe", "false"):
        return False
    m = re.search(r"answer:\s*(yes|no)\b", low)
    if m:
        return m.group(1) == "yes"
    m = re.search(r"rating:\s*\[\[(\d+)\]\]", low)
    return int(m.group(1)) == 10 if m else None


def _majority(labels: list[int]) -> bool:
    return sum(labels) * 2 > len(labels)


def load_jbb(path: Path) -> LabelSet:
    """JailbreakBench judge_comparison CSV (get it: ``huggingface-cli download JailbreakBench/JBB-Behaviors
    data/judge-comparison.csv --repo-type dataset``)."""
    path = Path(path)
    if not path.is_file():
        raise LabelSetError(f"{path}: no such file (JailbreakBench data/judge-comparison.csv)")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != JBB_COLUMNS:
            raise LabelSetError(f"{path}: columns {reader.fieldnames}, expected {JBB_COLUMNS}")
        rows = list(reader)
    items = []
    for k, row in enumerate(rows, start=2):
        where = f"{path}:{k}"
        ann = [_binary(row[f"human{i}"], f"{where} human{i}") for i in (1, 2, 3)]
        maj = _binary(row["human_majority"], f"{where} human_majority")
        if maj != int(_majority(ann)):
            raise LabelSetError(f"{where}: human_majority {maj} is not the majority of {ann}")
        sid = f"jbb-{row['Index']}"
        items.append(LabelledItem(
            sample=Sample(id=sid, text=row["goal"], goal=row["goal"], meta={"jailbreak_prompt": row["prompt"]}),
            response=Response(sid, row["target_response"]),
            human=bool(maj), annotators=ann,
            stored={name: _stored(row[col]) for col, name in JBB_STORED.items()},
        ))  # fmt: skip
    return LabelSet("jbb", "jailbreakbench-judge-comparison-csv", path.name, _sha256(path), items)


def _behaviours(csv_path: Path | None) -> dict[str, dict[str, str]]:
    if csv_path is None or not csv_path.is_file():
        return {}
    with csv_path.open(encoding="utf-8", newline="") as f:
        return {row["BehaviorID"]: row for row in csv.DictReader(f)}


def _val_json(path: Path) -> dict[str, list[dict[str, Any]]]:
    if not path.is_file():
        raise LabelSetError(f"{path}: no such file (HarmBench data/classifier_val_sets/*.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise LabelSetError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise LabelSetError(f"{path}: expected an object BehaviorID -> list of items")
    return data


def _humans(item: dict[str, Any], where: str) -> list[int]:
    missing = [k for k in ("human_0", "human_1", "human_2") if k not in item]
    if missing:
        raise LabelSetError(f"{where}: missing {missing}")
    return [_binary(item[k], f"{where} {k}") for k in ("human_0", "human_1", "human_2")]


def load_harmbench_text(path: Path, behaviors_csv: Path | None = None) -> LabelSet:
    """HarmBench's text classifier validation set (+ its behaviours CSV, by default in the official layout
    ``../behavior_datasets/harmbench_behaviors_text_all.csv`` next to ``classifier_val_sets/``)."""
    path = Path(path)
    data = _val_json(path)
    csv_path = behaviors_csv or path.parent.parent / "behavior_datasets" / "harmbench_behaviors_text_all.csv"
    behaviours = _behaviours(csv_path)
    if not behaviours:
        raise LabelSetError(
            f"{csv_path}: the behaviours CSV is needed to resolve BehaviorIDs (pass --behaviors)"
        )
    items = []
    for bid, entries in data.items():
        b = behaviours.get(bid)
        if b is None:
            raise LabelSetError(f"{path}: behaviour {bid!r} is not in {csv_path.name}")
        for k, it in enumerate(entries):
            sid = f"{bid}#{k}"
            meta = {"context": b["ContextString"]} if b.get("ContextString") else {}
            items.append(LabelledItem(
                sample=Sample(id=sid, text=str(it.get("test_case") or b["Behavior"]), goal=b["Behavior"], meta=meta,
                              category=b.get("SemanticCategory") or "uncategorized"),
                response=Response(sid, str(it.get("generation", ""))),
                human=_majority(ann := _humans(it, f"{path} {sid}")), annotators=ann,
                category=b.get("SemanticCategory") or "uncategorized",
                stored={name: _stored(it.get(key)) for key, name in HB_TEXT_STORED.items() if key in it},
            ))  # fmt: skip
    return LabelSet(
        "harmbench_text", "harmbench-classifier-val-json", path.name, _sha256(path, csv_path), items
    )


def load_harmbench_multimodal(
    path: Path, behaviors_csv: Path | None = None, images_root: Path | None = None
) -> LabelSet:
    """HarmBench's multimodal classifier validation set; images from ``images_root`` when present."""
    from PIL import Image

    path = Path(path)
    data = _val_json(path)
    csv_path = (
        behaviors_csv or path.parent.parent / "behavior_datasets" / "harmbench_behaviors_multimodal_all.csv"
    )
    behaviours = _behaviours(csv_path)
    items, missing_images = [], 0
    for bid, entries in data.items():
        b = behaviours.get(bid, {})
        for k, it in enumerate(entries):
            sid = f"{bid}#{k}"
            tc = it.get("test_case")
            if not (isinstance(tc, list) and len(tc) == 2):
                raise LabelSetError(f"{path} {sid}: test_case must be [image path, text]")
            image_path, text = str(tc[0]), str(tc[1])
            images = ()
            if images_root is not None and (Path(images_root) / image_path).is_file():
                images = (Image.open(Path(images_root) / image_path).convert("RGB"),)
            else:
                missing_images += 1
            category = b.get("SemanticCategory") or "uncategorized"
            meta = {"image_description": str(it.get("image_description") or ""), "image_path": image_path}
            items.append(LabelledItem(
                sample=Sample(id=sid, text=text, goal=b.get("Behavior") or text, images=images, meta=meta,
                              category=category),
                response=Response(sid, str(it.get("generation", ""))),
                human=_majority(ann := _humans(it, f"{path} {sid}")), annotators=ann, category=category,
                stored={name: _stored(it.get(key)) for key, name in HB_MM_STORED.items() if key in it},
            ))  # fmt: skip
    files = [path] + ([csv_path] if behaviours else [])
    notes = [
        f"{missing_images} of {len(items)} items without their attack image (judged with the description)"
    ]
    return LabelSet("harmbench_multimodal", "harmbench-classifier-val-json", path.name, _sha256(*files), items,
                    notes if missing_images else [])  # fmt: skip


def load_label_set(name: str, path: Path, **kwargs: Any) -> LabelSet:
    """Load ``name`` (one of LABEL_SETS) from ``path``."""
    loaders = {
        "jbb": load_jbb,
        "harmbench_text": load_harmbench_text,
        "harmbench_multimodal": load_harmbench_multimodal,
    }
    if name not in loaders:
        raise LabelSetError(f"unknown label set {name!r}; valid: {', '.join(LABEL_SETS)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if name == "jbb" and kwargs:
        raise LabelSetError(f"label set 'jbb' takes no extra files (got {sorted(kwargs)})")
    if name == "harmbench_text":
        kwargs.pop("images_root", None)
    return loaders[name](Path(path), **kwargs)
