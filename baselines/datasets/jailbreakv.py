"""JailBreakV-28K from a local copy of the Hugging Face dataset ``JailbreakV-28K/JailBreakV-28k`` (§7.2).

``JailBreakV_28K/mini_JailBreakV_28K.csv`` (split ``mini``) or ``JailBreakV_28K/JailBreakV_28K.csv``
(``full``), columns ``id, jailbreak_query, redteam_query, format, policy, image_path, from, selected_mini,
transfer_from_llm``; ``image_path`` is relative to the ``JailBreakV_28K/`` folder. ``Sample.text`` is the
jailbreak query sent with the image; ``goal`` is the underlying RedTeam-2K query; ``category`` the policy.
"""

from __future__ import annotations

import hashlib
from array import array
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, load_images, require
from baselines.datasets._images import LazyImage
from baselines.datasets._lazy import LazySamples, csv_record_at, file_state, iter_csv_records
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
        """Check the CSV and the images; errors name the file/line and the expected layout. The samples are
        built when used (:class:`~baselines.datasets._lazy.LazySamples`): per row only its byte offset in the
        CSV, its line number and its image's size are kept (20 bytes), so the full split's 28,000 rows do not
        grow a run's memory; a row is read back from the CSV (refused if the file changed since)."""
        base = Path(self.params.path).expanduser()
        root = base if (base / _CSV[self.params.split]).exists() else base / "JailBreakV_28K"
        require(root, "jailbreakv", LAYOUT, kind="dir")
        csv_path = require(root / _CSV[self.params.split], "jailbreakv", LAYOUT)
        checksum = Checksum(root)
        checksum.add_file(csv_path)
        state = file_state(csv_path)
        offsets, lines, sizes = array("q"), array("l"), array("l")
        skipped: list[dict[str, str]] = []
        ids = array(
            "Q"
        )  # 64-bit hashes of the ids, for the duplicate check (8 bytes a row, not a set of strings)
        rows = iter_csv_records(csv_path)
        header = next(rows, (1, 0, []))[2]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DatasetError(f"{csv_path}:1: missing column(s) {missing}; found {header}")
        for line, offset, fields in rows:
            if not fields:
                continue  # a blank line (csv.DictReader skips it)
            row = _row(csv_path, line, header, fields)
            if self.params.formats is not None and row["format"] not in self.params.formats:
                continue
            sid = row["id"].strip()
            if not sid or not row["jailbreak_query"].strip() or not row["image_path"].strip():
                raise DatasetError(f"{csv_path}:{line}: empty id, jailbreak_query or image_path")
            ids.append(_id_hash(sid))
            rel = Path(row["image_path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"{csv_path}:{line}: image_path must be relative to {root}: {rel}")
            images = load_images([root / rel], sid, checksum, skipped)
            if images is None:
                continue
            offsets.append(offset)
            lines.append(line)
            sizes.extend(images[0].size)
        _check_unique_ids(csv_path, ids, header, self.params.formats)

        def build(i: int) -> Sample:
            if file_state(csv_path) != state:
                raise DatasetError(f"{csv_path} changed since the dataset was loaded; load it again")
            row = dict(zip(header, csv_record_at(csv_path, offsets[i]), strict=False))
            meta: dict[str, object] = {
                k: row[k] for k in ("format", "from", "image_path", "selected_mini", "transfer_from_llm")
            }
            meta["source_line"] = lines[i]
            image = LazyImage(root / Path(row["image_path"]), (sizes[2 * i], sizes[2 * i + 1]))
            return Sample(
                id=row["id"].strip(),
                text=row["jailbreak_query"],
                goal=row["redteam_query"] or row["jailbreak_query"],
                images=(image,),
                category=row["policy"] or "uncategorized",
                meta=meta,
            )

        return LoadedDataset(
            name=self.name,
            samples=LazySamples(len(offsets), build),
            checksum=checksum.hexdigest(),
            source=str(csv_path),
            skipped=skipped,
        )


def _id_hash(sid: str) -> int:
    return int.from_bytes(hashlib.blake2b(sid.encode("utf-8"), digest_size=8).digest(), "little")


def _check_unique_ids(path: Path, ids: array, header: list[str], formats: list[str] | None) -> None:
    """Raise a DatasetError naming the line of the first repeated id. The ids' 64-bit hashes find candidates
    (no set of 28,000 strings); only a candidate's rows are read again and compared as strings."""
    import numpy as np

    hashes = np.frombuffer(ids, dtype=np.uint64) if len(ids) else np.zeros(0, dtype=np.uint64)
    uniq, counts = np.unique(hashes, return_counts=True)
    candidates = {int(h) for h in uniq[counts > 1]}
    if not candidates:
        return
    seen: set[str] = set()
    for k, (line, _, fields) in enumerate(iter_csv_records(path)):
        if k == 0 or len(fields) != len(header):  # the header, a blank line
            continue
        row = dict(zip(header, fields, strict=True))
        if formats is not None and row["format"] not in formats:
            continue
        sid = row["id"].strip()
        if _id_hash(sid) in candidates:
            if sid in seen:
                raise DatasetError(f"{path}:{line}: duplicate id {sid!r}")
            seen.add(sid)


def _row(path: Path, line: int, header: list[str], fields: list[str]) -> dict[str, str]:
    """A row as a dict, with :func:`~baselines.datasets._common.read_csv`'s check of its field count."""
    if len(fields) != len(header):
        extra, missing = fields[len(header) :], header[len(fields) :]
        why = (
            f"{len(extra)} extra (an unquoted comma? quote fields that contain commas)"
            if extra
            else f"no value for {', '.join(missing)}"
        )
        raise DatasetError(f"{path}:{line}: row has {len(fields)} fields, expected {len(header)}: {why}")
    return dict(zip(header, fields, strict=True))
