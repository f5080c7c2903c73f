"""Shared parts of the dataset loaders: checksums, layout errors, CSV/JSON reading, image loading.

A loader reads files from a local path. Every file it reads (data and images) goes into one ``Checksum``
(sha256 over ``relative path + sha256 of bytes``, sorted, so the value does not depend on reading order).
A missing file gives a ``DatasetError`` naming the path and the expected layout (a short tree); a malformed
row gives ``file:line``; a corrupt or missing image is skipped and recorded, and loading goes on. Images are decoded lazily.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from baselines.base import DatasetError
from baselines.datasets._images import lazy_image
from baselines.imaging import ImageLoadError


class Checksum:
    """sha256 over (relative path, content hash) of every file read, independent of reading order.

    At most :attr:`SPILL_ENTRIES` entries are held in memory; beyond that they go to temporary files as sorted
    runs, merged when the digest is taken (a 28,000-image dataset does not hold 28,000 paths while loading). The
    value is the same either way: one entry per path, the last one recorded, in sorted path order."""

    #: Entries held in memory before they are written out as a sorted run.
    SPILL_ENTRIES = 4096

    def __init__(self, root: Path) -> None:
        self.root = root
        # relative path -> sha256 digest (bytes: half a hex string's size)
        self._entries: dict[str, bytes] = {}
        self._runs: list[Any] = []  # temporary files, each a sorted run of JSON [path, hex] lines

    def add(self, path: Path, data: bytes | None = None) -> bytes:
        """Record a file (its bytes are read unless given) and return the bytes."""
        if data is None:
            data = path.read_bytes()
        self._put(self._rel(path), hashlib.sha256(data).digest())
        return data

    def _rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.name

    def add_file(self, path: Path) -> None:
        """Record a file, reading it in blocks (a large CSV is never held whole)."""
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        self._put(self._rel(path), h.digest())

    def _put(self, rel: str, digest: bytes) -> None:
        self._entries[rel] = digest
        if len(self._entries) >= self.SPILL_ENTRIES:
            run = tempfile.TemporaryFile("w+", encoding="utf-8")
            for k in sorted(self._entries):
                run.write(json.dumps([k, self._entries[k].hex()], ensure_ascii=False) + "\n")
            self._runs.append(run)
            self._entries.clear()

    def _sorted(self) -> Any:
        """(path, hex digest) in path order, one per path (the last recorded)."""
        if not self._runs:
            yield from ((k, self._entries[k].hex()) for k in sorted(self._entries))
            return

        def read(run: Any) -> Any:
            run.seek(0)
            for line in run:
                k, v = json.loads(line)
                yield k, v

        memory = ((k, self._entries[k].hex()) for k in sorted(self._entries))
        # heapq.merge is stable: a path recorded in several runs comes in run order, the last one kept
        merged = heapq.merge(*(read(r) for r in self._runs), memory, key=lambda kv: kv[0])
        last: tuple[str, str] | None = None
        for kv in merged:
            if last is not None and kv[0] != last[0]:
                yield last
            last = kv
        if last is not None:
            yield last

    def hexdigest(self) -> str:
        """The combined checksum, prefixed ``sha256:``."""
        h = hashlib.sha256()
        for rel, hexd in self._sorted():
            h.update(f"{rel}\t{hexd}\n".encode())
        return "sha256:" + h.hexdigest()


def layout_error(dataset: str, problem: str, path: Path, layout: str) -> DatasetError:
    """A DatasetError naming what is wrong, where, and the layout the loader expects."""
    return DatasetError(
        f"{dataset}: {problem}: {path}\nExpected layout (give the top folder with --dataset {dataset}:<path>"
        f" or --set dataset.path=<path>):\n{layout.rstrip()}"
    )


def require(path: Path, dataset: str, layout: str, *, kind: str = "file") -> Path:
    """``path`` if it exists as a file (or folder), else a layout error."""
    ok = path.is_file() if kind == "file" else path.is_dir()
    if not ok:
        raise layout_error(dataset, f"missing {kind}", path, layout)
    return path


def read_csv(
    path: Path, required: Iterable[str], dataset: str, checksum: Checksum
) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as (line number, row dict); a missing column or short row names file:line."""
    data = checksum.add(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e})") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(f"{path}:1: missing column(s) {missing}; found {header}")
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row or any(row.get(c) is None for c in header):
                missing = [c for c in header if row.get(c) is None]
                extra = row.get(None) or []
                n = len(header) - len(missing) + len(extra)
                why = (
                    f"{len(extra)} extra (an unquoted comma? quote fields that contain commas)"
                    if extra
                    else f"no value for {', '.join(missing)}"
                )
                raise DatasetError(f"{path}:{line}: row has {n} fields, expected {len(header)}: {why}")
            rows.append((line, row))
    except csv.Error as e:
        raise DatasetError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    return rows


def read_json(path: Path, dataset: str, checksum: Checksum) -> Any:
    """A JSON file; a syntax error names file:line."""
    data = checksum.add(path)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e})") from None


def read_json_list(path: Path, dataset: str, checksum: Checksum) -> list[Any]:
    """A JSON file whose top level must be a list of records (VLGuard, SIUO, VLSBench)."""
    records = read_json(path, dataset, checksum)
    if not isinstance(records, list):
        raise DatasetError(f"{path}:1: expected a JSON list of records")
    return records


def field(row: dict[str, Any], key: str, where: str, *, kind: type | tuple[type, ...] = str) -> Any:
    """``row[key]`` checked for presence and type; otherwise a DatasetError naming ``where``."""
    if key not in row:
        raise DatasetError(f"{where}: missing field {key!r}")
    value = row[key]
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise DatasetError(f"{where}: field {key!r} should be {expected}, got {type(value).__name__}")
    return value


def load_images(
    paths: list[Path], sample_id: str, checksum: Checksum, skipped: list[dict[str, str]]
) -> tuple | None:
    """The images as lazily decoded RGB PIL images (:mod:`baselines.datasets._images`: the header is read now,
    the pixels when used, so memory does not grow with the dataset), or None (with a ``skipped`` record) when
    one is missing or its header cannot be read."""
    images = []
    for p in paths:
        try:
            if p.is_file():
                checksum.add(p)
            images.append(lazy_image(p))
        except ImageLoadError as e:
            skipped.append({"id": sample_id, "path": str(p), "error": str(e)})
            return None
    return tuple(images)
