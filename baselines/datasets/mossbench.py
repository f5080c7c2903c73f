"""MOSSBench (arXiv 2406.17806) from a local path: 300 benign over-sensitivity pairs and the 244-item contrast set.

Files (``xirui-li/MOSSBench``): ``data/images_information/information.json`` -- a JSON object keyed by pid
("1".."300"), each value ``{image: "images/<pid>.png", "short description", description, question, pid,
metadata: {over: "type 1"|"type 2"|"type 3", human, child, syn, ocr, harm: [int]}}``, images relative to
``data/``; the contrast set has the same layout under ``data_contrast/`` (metadata ``{over}`` only). The user
turn is the raw question with the image (``experiments/main.py``). Benign items are labelled ``benign`` (an
answer is expected: the metric is the refusal rate), contrast items ``harmful``.
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

LAYOUT = """<path>/                                   (the MOSSBench repository root)
  data/images_information/information.json  {"<pid>": {"image": "images/<pid>.png", "question", "pid",
                                              "short description", "description", "metadata": {"over": "type N", ...}}}
  data/images/<pid>.png
  data_contrast/images_information/information.json   (subset=contrast; same keys, metadata {"over"})
  data_contrast/images/<pid>.png"""
TYPES = {"type 1": "Exaggerated Risk", "type 2": "Negated Harm", "type 3": "Counterintuitive Interpretation"}
_FOLDER = {"benign": "data", "contrast": "data_contrast"}


@register("dataset")
class MOSSBenchDataset(Dataset):
    """MOSSBench's benign over-sensitivity set (300) or its contrast set (244)."""

    paper_id = "2024-li-mossbench"
    summary = "MOSSBench from a local path: data/ (300 benign) or data_contrast/ (244 harmful contrast)"
    deviations: ClassVar[list[dict[str, str]]] = []

    class Params(StrictParams):
        """Where the repository is, which set, and whether the official counts are checked."""

        path: str = Field(description="the MOSSBench repository root (holding data/ and data_contrast/)")
        subset: Literal["benign", "contrast"] = Field("benign", description="benign: 300; contrast: 244")
        counts: Literal["official", "any"] = Field(
            "official", description="official: require the release's item count; any: a subset or stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read information.json and the images' headers; errors name the pid and the layout."""
        base = Path(self.params.path).expanduser()
        folder = base / _FOLDER[self.params.subset]
        path = folder / "images_information" / "information.json"
        if not path.is_file():
            raise layout_error("mossbench", "missing file", path, LAYOUT)
        checksum = Checksum(base)
        info = read_json(path, "mossbench", checksum)
        if not isinstance(info, dict):
            raise DatasetError(f"{path}:1: expected a JSON object keyed by pid")
        expected = CARDS["mossbench"]["official_counts"][self.params.subset]
        check_count("mossbench", path, len(info), expected, "items", self.params.counts)
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        for key, rec in sorted(info.items(), key=lambda kv: (len(kv[0]), kv[0])):
            where = f"{path}: pid {key!r}"
            if not isinstance(rec, dict):
                raise DatasetError(f"{where}: expected an object")
            pid = str(field(rec, "pid", where, kind=(str, int)))
            if pid != key:
                raise DatasetError(f"{where}: pid field {pid!r} differs from its key")
            question = field(rec, "question", where)
            meta_in = field(rec, "metadata", where, kind=dict)
            over = field(meta_in, "over", f"{where} metadata")
            if over not in TYPES:
                raise DatasetError(f"{where}: metadata.over must be one of {sorted(TYPES)}, got {over!r}")
            rel = Path(field(rec, "image", where))
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{where}: image must be relative to {folder}, got {rel}")
            images = load_images([folder / rel], pid, checksum, skipped)
            if images is None:
                continue
            meta = {"pid": pid, "type": over, "image": str(rel), "subset": self.params.subset,
                    **{k: meta_in[k] for k in ("human", "child", "syn", "ocr", "harm") if k in meta_in},
                    "short_description": rec.get("short description", ""),
                    "description": rec.get("description", "")}  # fmt: skip
            samples.append(
                Sample(
                    id=f"{self.params.subset}/{pid}",
                    text=question,
                    images=images,
                    category=TYPES[over],
                    label="benign" if self.params.subset == "benign" else "harmful",
                    meta=meta,
                )  # fmt: skip
            )
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )
