"""HarmBench's multimodal behaviours (arXiv 2402.04249) from a local copy of HarmBench's ``data/``.

Files: ``data/behavior_datasets/harmbench_behaviors_multimodal_all.csv`` (110 rows; columns ``Behavior,
BehaviorID, FunctionalCategory, SemanticCategory, ImageFileName, Source, ImageDescription,
RedactedImageDescription, Tags``; descriptions hold newlines) and ``data/multimodal_behavior_images/<file>``.
Rows with ``FunctionalCategory == "multimodal"`` are kept (all of them in the release). The behaviour string is
sent with its image; ``meta["image_description"]`` carries ``RedactedImageDescription``, the context HarmBench's
classifier gets for multimodal behaviours (judge ``harmbench``, ``behavior_type=auto``). With
``counts=official`` the CSV must match the sha256 of the release (upstream commit ``c0423b9``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, layout_error, load_images, read_csv
from baselines.datasets.cards import CARDS, check_count
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

COLUMNS = ("Behavior", "BehaviorID", "FunctionalCategory", "SemanticCategory", "ImageFileName", "Source",
           "ImageDescription", "RedactedImageDescription", "Tags")  # fmt: skip
CSV = Path("data/behavior_datasets/harmbench_behaviors_multimodal_all.csv")
IMAGES = Path("data/multimodal_behavior_images")
LAYOUT = """<path>/                                   (the HarmBench repository root)
  data/behavior_datasets/harmbench_behaviors_multimodal_all.csv   Behavior,BehaviorID,FunctionalCategory,
                                              SemanticCategory,ImageFileName,Source,ImageDescription,
                                              RedactedImageDescription,Tags
  data/multimodal_behavior_images/<ImageFileName>"""


@register("dataset")
class HarmBenchMMDataset(Dataset):
    """HarmBench's 110 multimodal behaviours with their images and redacted image descriptions."""

    paper_id = "2024-mazeika-harmbench"
    summary = "HarmBench multimodal behaviours from a local HarmBench data/ folder (CSV + images)"
    deviations: ClassVar[list[dict[str, str]]] = []

    class Params(StrictParams):
        """Where HarmBench is and whether the release's count and checksum are required."""

        path: str = Field(description="the HarmBench repository root (holding data/)")
        counts: Literal["official", "any"] = Field(
            "official", description="official: require the release's 110 rows and CSV sha256; any: a stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read the CSV (checked against the release) and the images' headers."""
        root = Path(self.params.path).expanduser()
        path = root / CSV
        if not path.is_file():
            raise layout_error("harmbench_mm", "missing file", path, LAYOUT)
        checksum = Checksum(root)
        rows = read_csv(path, COLUMNS, "harmbench_mm", checksum)
        card = CARDS["harmbench_mm"]
        check_count(
            "harmbench_mm", path, len(rows), card["official_counts"]["total"], "rows", self.params.counts
        )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if self.params.counts == "official" and digest != card["official_sha256"]:
            raise DatasetError(
                f"harmbench_mm: {path} has sha256 {digest[:16]}..., the release (c0423b9) has "
                f"{card['official_sha256'][:16]}...; use the released file, or --set dataset.counts=any"
            )
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        seen: set[str] = set()
        for line, row in rows:
            if row["FunctionalCategory"] != "multimodal":
                continue
            sid = row["BehaviorID"].strip()
            if not sid or sid in seen:
                raise DatasetError(f"{path}:{line}: empty or duplicate BehaviorID {sid!r}")
            seen.add(sid)
            rel = Path(row["ImageFileName"])
            if not row["ImageFileName"] or rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{path}:{line}: bad ImageFileName {row['ImageFileName']!r}")
            images = load_images([root / IMAGES / rel], sid, checksum, skipped)
            if images is None:
                continue
            meta = {"behavior_id": sid, "image": str(rel), "tags": row["Tags"].split(", "),
                    "image_description": row["RedactedImageDescription"], "source_line": line}  # fmt: skip
            samples.append(Sample(id=sid, text=row["Behavior"], images=images, category=row["SemanticCategory"],
                                  label="harmful", meta=meta))  # fmt: skip
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )
