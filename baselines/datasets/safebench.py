"""SafeBench (FigStep's benchmark) from a local copy of the FigStep repository's ``data/`` folder.

500 harmful questions (``safebench.csv``) or 50 (``SafeBench-Tiny.csv``) over 10 topics; columns
``dataset,category_id,task_id,category_name,question,instruction`` (BASELINES.md §1.3). ``Sample.text`` and
``goal`` are the question; ``meta["instruction"]`` is the declarative form the FigStep attack renders. With
``images=true`` the released FigStep images ``query_ForbidQI_{category_id}_{task_id}_6.png`` are attached
(already-attacked inputs: run them without another attack).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, layout_error, load_images, read_csv, require
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

COLUMNS = ("dataset", "category_id", "task_id", "category_name", "question", "instruction")
LAYOUT = """<path>/                      (the FigStep repo's data/ folder; the repo root also works)
  question/safebench.csv      columns dataset,category_id,task_id,category_name,question,instruction
  question/SafeBench-Tiny.csv (subset=tiny)
  images/SafeBench/query_ForbidQI_<category_id>_<task_id>_6.png        (only with images=true)
  images/SafeBench-Tiny/query_ForbidQI_<category_id>_<task_id>_6.png   (only with images=true)"""
_FILES = {"full": ("safebench.csv", "SafeBench"), "tiny": ("SafeBench-Tiny.csv", "SafeBench-Tiny")}


def find_data_dir(path: Path, marker: str) -> Path:
    """``path`` itself, or its ``data/`` subfolder, whichever holds ``marker``."""
    for cand in (path, path / "data"):
        if (cand / marker).exists():
            return cand
    return path


@register("dataset")
class SafeBenchDataset(Dataset):
    """SafeBench / SafeBench-Tiny questions (+ optional released FigStep images) from a local path."""

    paper_id = "2023-gong-figstep"
    summary = "SafeBench (FigStep) from a local path: safebench.csv or SafeBench-Tiny.csv (+ released images)"

    deviations: ClassVar[list[dict[str, str]]] = []  # none: reads the official files as they are

    class Params(StrictParams):
        """Where the data is and which part to read."""

        path: str = Field(description="the FigStep repo's data/ folder (or the repo root)")
        subset: Literal["full", "tiny"] = Field("full", description="full: 500 questions; tiny: 50")
        images: bool = Field(False, description="attach the released FigStep images (already attacked)")

    def load(self) -> LoadedDataset:
        """Read the CSV (and images); errors name the file/line and the expected layout."""
        csv_name, img_dir_name = _FILES[self.params.subset]
        root = find_data_dir(Path(self.params.path).expanduser(), "question")
        require(root, "safebench", LAYOUT, kind="dir")
        csv_path = require(root / "question" / csv_name, "safebench", LAYOUT)
        img_dir = root / "images" / img_dir_name
        if self.params.images and not img_dir.is_dir():
            raise layout_error("safebench", "missing image folder (images=true)", img_dir, LAYOUT)
        checksum = Checksum(root)
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        for line, row in read_csv(csv_path, COLUMNS, "safebench", checksum):
            try:
                cat_id, task_id = int(row["category_id"]), int(row["task_id"])
            except ValueError:
                raise DatasetError(f"{csv_path}:{line}: category_id and task_id must be integers") from None
            if not row["question"].strip():
                raise DatasetError(f"{csv_path}:{line}: empty question")
            sid = f"{cat_id}-{task_id}"
            images: tuple = ()
            if self.params.images:
                img = img_dir / f"query_{row['dataset']}_{cat_id}_{task_id}_6.png"
                loaded = load_images([img], sid, checksum, skipped)
                if loaded is None:
                    continue
                images = loaded
            meta = {
                "instruction": row["instruction"],
                "category_id": cat_id,
                "task_id": task_id,
                "dataset": row["dataset"],
                "source_line": line,
            }
            samples.append(
                Sample(
                    id=sid,
                    text=row["question"],
                    goal=row["question"],
                    images=images,
                    category=row["category_name"],
                    label="harmful",
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
