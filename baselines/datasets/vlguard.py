"""VLGuard's test split from a local path (``test.json`` + images from ``test.zip``; BASELINES.md §13.1, §13.3).

Each record ``{"id", "image", "safe", "harmful_category"?, "harmful_subcategory"?, "instr-resp": [...]}``
gives up to two samples, as VLGuard's evaluation does: ``unsafes`` (unsafe image + its ``instruction``,
harmful), ``safe_unsafes`` (safe image + ``unsafe_instruction``, harmful) and ``safe_safes`` (safe image +
``safe_instruction``, benign: the over-refusal control). Sample ids are ``<id>/<subset>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, field, load_images, read_json_list, require
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

LAYOUT = """<path>/
  test.json                  [{"id", "image": "<folder>/<file>.png", "safe": bool, "harmful_category"?,
                               "harmful_subcategory"?, "instr-resp": [{"instruction"|"safe_instruction"|
                               "unsafe_instruction": str, "response": str}, ...]}, ...]
  test/<folder>/<file>.png   (test.zip unzipped; images directly under <path>/ also work)"""
SUBSETS = ("unsafes", "safe_unsafes", "safe_safes")
_KEYS = {"unsafes": "instruction", "safe_unsafes": "unsafe_instruction", "safe_safes": "safe_instruction"}


@register("dataset")
class VLGuardDataset(Dataset):
    """VLGuard test split (unsafes, safe_unsafes, safe_safes) from a local path."""

    paper_id = "2024-zong-vlguard"
    summary = "VLGuard test split from a local path: test.json + test/ images (3 subsets)"

    deviations: ClassVar[list[dict[str, str]]] = []  # none: reads the official files as they are

    class Params(StrictParams):
        """Where the data is and which subsets."""

        path: str = Field(description="folder holding test.json and the test/ image folder")
        subsets: list[Literal["unsafes", "safe_unsafes", "safe_safes"]] = Field(
            default_factory=lambda: list(SUBSETS), description="which evaluation subsets to load"
        )

    def load(self) -> LoadedDataset:
        """Read test.json and the images; errors name the record and the expected layout."""
        root = Path(self.params.path).expanduser()
        require(root, "vlguard", LAYOUT, kind="dir")
        json_path = require(root / "test.json", "vlguard", LAYOUT)
        img_root = root / "test" if (root / "test").is_dir() else root
        checksum = Checksum(root)
        records = read_json_list(json_path, "vlguard", checksum)
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        for n, rec in enumerate(records):
            where = f"{json_path}: record {n}"
            if not isinstance(rec, dict):
                raise DatasetError(f"{where}: expected an object")
            rid = str(field(rec, "id", where, kind=(str, int)))
            where = f"{json_path}: record {n} (id {rid!r})"
            safe = field(rec, "safe", where, kind=bool)
            pairs = field(rec, "instr-resp", where, kind=list)
            by_subset = self._pairs_by_subset(pairs, safe, where)
            wanted = [s for s in self.params.subsets if s in by_subset]
            if not wanted:
                continue
            rel = Path(field(rec, "image", where))
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{where}: image must be a relative path, got {rel}")
            images = load_images([img_root / rel], rid, checksum, skipped)
            if images is None:
                continue
            category = "/".join(x for x in (rec.get("harmful_category"), rec.get("harmful_subcategory")) if x)
            for subset in wanted:
                text, reference = by_subset[subset]
                samples.append(
                    Sample(
                        id=f"{rid}/{subset}",
                        text=text,
                        images=images,
                        category=category or ("safe" if safe else "uncategorized"),
                        label="benign" if subset == "safe_safes" else "harmful",
                        meta={
                            "subset": subset,
                            "image": str(rel),
                            "safe_image": safe,
                            "reference": reference,
                        },
                    )
                )
        return LoadedDataset(
            name=self.name,
            samples=samples,
            checksum=checksum.hexdigest(),
            source=str(json_path),
            skipped=skipped,
        )

    @staticmethod
    def _pairs_by_subset(pairs: list, safe: bool, where: str) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for pair in pairs:
            if not isinstance(pair, dict):
                raise DatasetError(f"{where}: instr-resp items must be objects")
            for subset, key in _KEYS.items():
                if key in pair and (subset == "unsafes") != safe:
                    out[subset] = (field(pair, key, where), str(pair.get("response", "")))
        expected = ("safe_unsafes", "safe_safes") if safe else ("unsafes",)
        missing = [_KEYS[s] for s in expected if s not in out]
        if missing:
            raise DatasetError(
                f"{where}: instr-resp lacks {missing} for a {'safe' if safe else 'unsafe'} image"
            )
        return out
