"""MSSBench (Multimodal Situational Safety, arXiv 2410.06172) from a local path, instruction-following setting.

Files (HF ``kzhou35/mssbench``): ``combined.json`` = ``{"chat": [...], "embodied": [...]}`` and the image folders
``chat/`` and ``embodied/``. A chat entry ``{safe_image_path, unsafe_image_path, intent, unsafe_image, Type,
queries}`` gives, per query, one sample with the safe image and one with the unsafe image, both with text
``PROMPT_CHAT_IF + query``; an embodied entry ``{task, category, safe_instructions, unsafe_instructions, safe,
unsafe, ...}`` gives, per zipped (safe, unsafe) instruction pair, ``PROMPT_EMBODIED_IF + instruction`` with each
image (``utils/infer_on_data.py``, setting ``if``). Safe-situation samples are ``benign`` (an answer is right),
unsafe-situation ones ``harmful`` (a warning or refusal is right). The official ``inference.py`` opens
``combine.json``; the data file is ``combined.json``, which is what this loader reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, field, layout_error, load_images, read_json
from baselines.datasets.cards import CARDS, check_count
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

LAYOUT = """<path>/                 (HF kzhou35/mssbench; pin the revision: v1 and v2 differ)
  combined.json          {"chat": [{"safe_image_path", "unsafe_image_path", "intent", "unsafe_image", "Type",
                                    "queries": [...]}],
                          "embodied": [{"task", "category", "safe_instructions": [...], "unsafe_instructions": [...],
                                        "safe", "unsafe", ...}]}
                         (the official inference.py opens "combine.json" -- a typo; the file is combined.json)
  chat/<image>           images of the chat task
  embodied/<image>       images of the embodied task"""


def task_prompt(task: str) -> str:
    """The verbatim instruction-following prompt of a task (``utils/prompts.py``, sha256-checked)."""
    from baselines.judges._prompts import load_prompt

    return load_prompt("mssbench_chat_if" if task == "chat" else "mssbench_embodied_if").text


def count_pairs(data: dict) -> int:
    """The query-image pairs of combined.json as the paper counts them: each chat query and each embodied
    instruction pair with its safe and its unsafe image (2 per query / pair), both tasks (whichever are loaded;
    an entry without its list counts 0 -- the loader reports it when that task is loaded)."""
    n = 0
    for task, key in (("chat", "queries"), ("embodied", "safe_instructions")):
        for entry in data[task]:
            items = entry.get(key) if isinstance(entry, dict) else None
            n += 2 * len(items) if isinstance(items, list) else 0
    return n


@register("dataset")
class MSSBenchDataset(Dataset):
    """MSSBench chat and embodied tasks: each query with a safe and an unsafe situation image."""

    paper_id = "2024-zhou-multimodal-situational-safety"
    summary = "MSSBench from a local path: combined.json + chat/ + embodied/ (if setting, safe/unsafe pairs)"
    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "data file name",
            "official": "inference.py opens combine.json",
            "ours": "combined.json (the name of the released file)",
            "why": "typo in the official script",
            "effect": "none (the script fails as published)",
        }
    ]

    class Params(StrictParams):
        """Where the data is and which tasks."""

        path: str = Field(description="folder holding combined.json, chat/ and embodied/")
        tasks: list[Literal["chat", "embodied"]] = Field(
            default_factory=lambda: ["chat", "embodied"], description="which tasks to load"
        )
        counts: Literal["official", "any"] = Field(
            "official",
            description="official: require the query-image pairs of a release (1,820 in v1, 1,960 in v2; both "
            "tasks, counted in combined.json whichever tasks are loaded); any: a subset or stand-in",
        )

    def load(self) -> LoadedDataset:
        """Read combined.json and the images' headers; errors name the entry and the layout."""
        root = Path(self.params.path).expanduser()
        path = root / "combined.json"
        if not path.is_file():
            raise layout_error("mssbench", "missing file", path, LAYOUT)
        checksum = Checksum(root)
        data = read_json(path, "mssbench", checksum)
        if not isinstance(data, dict) or not all(isinstance(data.get(t), list) for t in ("chat", "embodied")):
            raise DatasetError(f"{path}:1: expected an object with lists 'chat' and 'embodied'")
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        for task in self.params.tasks:
            folder = root / task
            if not folder.is_dir():
                raise layout_error("mssbench", "missing dir", folder, LAYOUT)
            prompt = task_prompt(task)
            for i, entry in enumerate(data[task]):
                where = f"{path}: {task}[{i}]"
                if not isinstance(entry, dict):
                    raise DatasetError(f"{where}: expected an object")
                for j, (safe_text, unsafe_text, safe_img, unsafe_img, category, extra) in enumerate(
                    self._pairs(task, entry, where)
                ):
                    for situation, text, img in (
                        ("safe", safe_text, safe_img),
                        ("unsafe", unsafe_text, unsafe_img),
                    ):
                        rel = Path(img)
                        if rel.is_absolute() or ".." in rel.parts:
                            raise DatasetError(
                                f"{where}: image paths must be relative to {folder}, got {rel}"
                            )
                        sid = f"{task}/{i}/{j}/{situation}"
                        images = load_images([folder / rel], sid, checksum, skipped)
                        if images is None:
                            continue
                        samples.append(Sample(
                            id=sid, text=prompt + text, goal=text, images=images, category=category,
                            label="benign" if situation == "safe" else "harmful",
                            meta={"task": task, "situation": situation, "pair": f"{task}/{i}/{j}",
                                  "image": str(rel), **extra},
                        ))  # fmt: skip
        # after the entries' own checks (their errors are more precise than a count)
        check_count("mssbench", path, count_pairs(data), list(CARDS["mssbench"]["official_counts"].values()),
                    "query-image pairs", self.params.counts)  # fmt: skip
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )

    @staticmethod
    def _pairs(task: str, entry: dict, where: str) -> list[tuple[str, str, str, str, str, dict]]:
        if task == "chat":
            queries = field(entry, "queries", where, kind=list)
            if not all(isinstance(q, str) for q in queries):
                raise DatasetError(f"{where}: queries must be strings")
            safe, unsafe = field(entry, "safe_image_path", where), field(entry, "unsafe_image_path", where)
            extra = {"intent": entry.get("intent", "")}
            return [(q, q, safe, unsafe, field(entry, "Type", where), extra) for q in queries]
        safes = field(entry, "safe_instructions", where, kind=list)
        unsafes = field(entry, "unsafe_instructions", where, kind=list)
        if len(safes) != len(unsafes):
            raise DatasetError(f"{where}: safe_instructions and unsafe_instructions differ in length")
        safe, unsafe = field(entry, "safe", where), field(entry, "unsafe", where)
        extra = {"task_text": entry.get("task", "")}
        return [
            (s, u, safe, unsafe, field(entry, "category", where), extra)
            for s, u in zip(safes, unsafes, strict=True)
        ]
