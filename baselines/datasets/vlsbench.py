"""VLSBench (arXiv 2411.19939) from a local path: 2,241 image-instruction pairs whose risk is only in the image.

Files (HF ``Foreshhh/vlsbench`` = ``AI45Lab/VLSBench`` ``data/``): ``data.json`` -- a JSON list of
``{instruction_id, instruction, image_path: "imgs/<id>.png", category, sub_category, source}`` (+
``image_description``, ``safety_reason`` since the 2025 revision) -- and ``imgs/`` (``imgs.tar`` untarred). The
user turn is the raw instruction with the image (``eval.py``). The official ``eval.py`` keeps only
``data[:2]`` (a leftover debugging line); this loader reads every record.
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

LAYOUT = """<path>/
  data.json         [{"instruction_id", "instruction", "image_path": "imgs/<id>.png", "category",
                      "sub_category", "source", "image_description"?, "safety_reason"?}, ...]
  imgs/<id>.png     (imgs.tar untarred here)"""
_KEYS = ("instruction_id", "instruction", "image_path", "category", "sub_category", "source")


@register("dataset")
class VLSBenchDataset(Dataset):
    """VLSBench: image-instruction pairs where the harmful content is only visual."""

    paper_id = "2024-hu-vlsbench"
    summary = "VLSBench from a local path: data.json + imgs/ (all 2,241 pairs; not the script's data[:2])"
    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "items evaluated",
            "official": "eval.py keeps data[:2] (the first two items)",
            "ours": "every record of data.json",
            "why": "a leftover debugging line; the paper reports the full set",
            "effect": "the full benchmark instead of two items",
        }
    ]

    class Params(StrictParams):
        """Where the data is and whether the official count is checked."""

        path: str = Field(description="folder holding data.json and imgs/")
        counts: Literal["official", "any"] = Field(
            "official", description="official: require the release's 2,241 items; any: a subset or stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read data.json and the images' headers; errors name the record and the layout."""
        root = Path(self.params.path).expanduser()
        path = root / "data.json"
        if not path.is_file():
            raise layout_error("vlsbench", "missing file", path, LAYOUT)
        checksum = Checksum(root)
        records = read_json_list(path, "vlsbench", checksum)
        check_count("vlsbench", path, len(records), CARDS["vlsbench"]["official_counts"]["total"], "records",
                    self.params.counts)  # fmt: skip
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        seen: set[str] = set()
        for n, rec in enumerate(records):
            where = f"{path}: record {n}"
            if not isinstance(rec, dict):
                raise DatasetError(f"{where}: expected an object")
            v = {k: field(rec, k, where, kind=int if k == "instruction_id" else str) for k in _KEYS}
            sid = str(v["instruction_id"])
            if sid in seen:
                raise DatasetError(f"{where}: duplicate instruction_id {sid}")
            seen.add(sid)
            rel = Path(v["image_path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{where}: image_path must be relative to {root}, got {rel}")
            images = load_images([root / rel], sid, checksum, skipped)
            if images is None:
                continue
            meta = {k: v[k] for k in ("instruction_id", "image_path", "sub_category", "source")}
            meta.update(
                {k: rec[k] for k in ("image_description", "safety_reason") if isinstance(rec.get(k), str)}
            )
            samples.append(Sample(id=sid, text=v["instruction"], images=images, category=v["category"],
                                  label="harmful", meta=meta))  # fmt: skip
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )
