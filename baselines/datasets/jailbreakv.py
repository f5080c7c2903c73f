"""JailBreakV-28K from a local copy of the Hugging Face dataset ``JailbreakV-28K/JailBreakV-28k`` (§7.2).

``JailBreakV_28K/mini_JailBreakV_28K.csv`` (split ``mini``) or ``JailBreakV_28K/JailBreakV_28K.csv``
(``full``), columns ``id, jailbreak_query, redteam_query, format, policy, image_path, from, selected_mini,
transfer_from_llm``; ``image_path`` is relative to the ``JailBreakV_28K/`` folder. ``Sample.text`` is the
jailbreak query sent with the image; ``goal`` is the underlying RedTeam-2K query; ``category`` the policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, load_images, read_csv, require
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

COLUMNS = (
    "id",
    "jailbreak_query",
    "redteam_query",
    "format",
    "policy",
    "image_path",
    "from",
    "selected_mini",
    "transfer_from_llm",
)
LAYOUT = """<path>/                                   (the dataset repo root; the JailBreakV_28K/ folder itself also works)
  JailBreakV_28K/mini_JailBreakV_28K.csv    (split=mini)  columns id,jailbreak_query,redteam_query,format,
  JailBreakV_28K/JailBreakV_28K.csv         (split=full)          policy,image_path,from,selected_mini,transfer_from_llm
  JailBreakV_28K/<image_path>               e.g. llm_transfer_attack/..., figstep/..., query_related/..."""
_CSV = {"mini": "mini_JailBreakV_28K.csv", "full": "JailBreakV_28K.csv"}


@register("dataset")
class JailBreakVDataset(Dataset):
    """JailBreakV-28K (mini or full) image-text jailbreak pairs from a local path."""

    paper_id = "2024-luo-jailbreakv-28k"
    summary = "JailBreakV-28K from a local path: JailBreakV_28K/{mini_,}JailBreakV_28K.csv + images"

    deviations: ClassVar[list[dict[str, str]]] = []  # none: reads the official files as they are

    class Params(StrictParams):
        """Where the data is, which split, which attack formats."""

        path: str = Field(description="the dataset folder (holding JailBreakV_28K/)")
        split: Literal["mini", "full"] = Field("mini", description="mini: 280 pairs; full: 28,000")
        formats: list[str] | None = Field(None, description="keep only these `format` values (None: all)")

    def load(self) -> LoadedDataset:
        """Read the CSV and the images; errors name the file/line and the expected layout."""
        base = Path(self.params.path).expanduser()
        root = base if (base / _CSV[self.params.split]).exists() else base / "JailBreakV_28K"
        require(root, "jailbreakv", LAYOUT, kind="dir")
        csv_path = require(root / _CSV[self.params.split], "jailbreakv", LAYOUT)
        checksum = Checksum(root)
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        seen: set[str] = set()
        for line, row in read_csv(csv_path, COLUMNS, "jailbreakv", checksum):
            if self.params.formats is not None and row["format"] not in self.params.formats:
                continue
            sid = row["id"].strip()
            if not sid or not row["jailbreak_query"].strip() or not row["image_path"].strip():
                raise DatasetError(f"{csv_path}:{line}: empty id, jailbreak_query or image_path")
            if sid in seen:
                raise DatasetError(f"{csv_path}:{line}: duplicate id {sid!r}")
            seen.add(sid)
            rel = Path(row["image_path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{csv_path}:{line}: image_path must be relative to {root}: {rel}")
            images = load_images([root / rel], sid, checksum, skipped)
            if images is None:
                continue
            meta = {k: row[k] for k in ("format", "from", "image_path", "selected_mini", "transfer_from_llm")}
            meta["source_line"] = line
            samples.append(
                Sample(
                    id=sid,
                    text=row["jailbreak_query"],
                    goal=row["redteam_query"] or row["jailbreak_query"],
                    images=images,
                    category=row["policy"] or "uncategorized",
                    meta=meta,
                )
            )
        return LoadedDataset(
            name=self.name,
            samples=samples,
            checksum=checksum.hexdigest(),
            source=str(csv_path),
            skipped=skipped,
        )
