"""MM-Vet (arXiv 2308.02490) from a local path: 218 open questions for the utility side of a defense.

Files (``mm-vet.zip`` of the v1 release, or HF ``whyu/mm-vet``): ``mm-vet.json`` -- an object keyed
``"v1_0"``..``"v1_217"``, each ``{imagename, question, answer, capability: [rec|ocr|know|gen|spat|math, ...]}``
(``answer`` may hold ``<AND>`` / ``<OR>``) -- and ``images/<imagename>``. The raw question is sent with the image
(the official inference helper adds no prompt). Samples are ``benign``; the grader (judge ``mmvet``) scores each
answer 0.0-1.0.
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

LAYOUT = """<path>/                 (mm-vet.zip unzipped: the mm-vet/ folder)
  mm-vet.json            {"v1_0": {"imagename", "question", "answer", "capability": ["rec", ...]}, ...}
  images/<imagename>"""


def load_mmvet(name: str, root: Path, expected: int | None, counts: str) -> LoadedDataset:
    """Samples of an MM-Vet-format folder (``mm-vet.json`` + ``images/``), the count checked in official mode."""
    path = root / "mm-vet.json"
    if not path.is_file():
        raise layout_error(name, "missing file", path, LAYOUT)
    checksum = Checksum(root)
    data = read_json(path, name, checksum)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}:1: expected a JSON object keyed by question id (v1_0, ...)")
    check_count(name, path, len(data), expected, "questions", counts)
    samples: list[Sample] = []
    skipped: list[dict[str, str]] = []
    for qid, rec in data.items():
        where = f"{path}: {qid!r}"
        if not isinstance(rec, dict):
            raise DatasetError(f"{where}: expected an object")
        caps = field(rec, "capability", where, kind=list)
        if not caps or not all(isinstance(c, str) for c in caps):
            raise DatasetError(f"{where}: capability must be a non-empty list of strings")
        rel = Path(field(rec, "imagename", where))
        if rel.is_absolute() or ".." in rel.parts:
            raise DatasetError(f"{where}: imagename must be a file name under images/, got {rel}")
        images = load_images([root / "images" / rel], qid, checksum, skipped)
        if images is None:
            continue
        samples.append(Sample(
            id=qid, text=field(rec, "question", where), images=images, category=",".join(sorted(caps)),
            label="benign", meta={"answer": field(rec, "answer", where), "capability": caps, "image": str(rel)},
        ))  # fmt: skip
    return LoadedDataset(
        name=name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
    )


@register("dataset")
class MMVetDataset(Dataset):
    """MM-Vet's 218 integrated-capability questions (utility, not safety)."""

    paper_id = None  # MM-Vet (arXiv 2308.02490) is not a safety paper and not in the catalog
    summary = "MM-Vet from a local path: mm-vet.json + images/ (utility questions, graded 0-1)"
    deviations: ClassVar[list[dict[str, str]]] = []

    class Params(StrictParams):
        """Where the data is and whether the official count is checked."""

        path: str = Field(description="the mm-vet/ folder holding mm-vet.json and images/")
        counts: Literal["official", "any"] = Field(
            "official", description="official: require the release's 218 questions; any: a subset or stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read mm-vet.json and the images' headers."""
        root = Path(self.params.path).expanduser()
        return load_mmvet(self.name, root, CARDS["mmvet"]["official_counts"]["total"], self.params.counts)
