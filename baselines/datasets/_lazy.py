"""Samples built when used, so that a large benchmark's run does not hold one Python object per item.

A :class:`LazySamples` is a read-only ``Sequence[Sample]`` that keeps a few bytes per item (e.g. the byte offset
of its CSV record and its image's size) and builds the :class:`~baselines.types.Sample` when it is indexed or
iterated; nothing is cached, so a run holds only the chunk it is answering. :class:`SampleView` is a subset of
a sequence by position (``--limit``, ``--shard``, the samples a resumed condition still needs).
:func:`iter_csv_records` reads a CSV as :func:`baselines.datasets._common.read_csv` does (same rows, same line
numbers) and gives each row's byte offset; :func:`csv_record_at` reads one row back from its offset.
"""

from __future__ import annotations

import csv
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from baselines.base import DatasetError
from baselines.types import Sample


class LazySamples(Sequence[Sample]):
    """``n`` samples, the i-th built by ``build(i)`` each time it is asked for (never cached)."""

    def __init__(self, n: int, build: Callable[[int], Sample]) -> None:
        self._n = n
        self._build = build

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...
    def __getitem__(self, i: int | slice) -> Sample | list[Sample]:
        if isinstance(i, slice):
            return [self._build(k) for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"sample index {i} out of range (0..{self._n - 1})")
        return self._build(i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self._n):
            yield self._build(i)

    def __repr__(self) -> str:
        return f"<LazySamples n={self._n}>"


class SampleView(Sequence[Sample]):
    """The samples of ``source`` at ``positions`` (a ``range`` or an ``array('l')``: 8 bytes a sample)."""

    def __init__(self, source: Sequence[Sample], positions: range | array) -> None:
        self.source = source
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...
    def __getitem__(self, i: int | slice) -> Sample | list[Sample]:
        if isinstance(i, slice):
            return [self.source[p] for p in self.positions[i]]
        return self.source[self.positions[i]]

    def __iter__(self) -> Iterator[Sample]:
        for p in self.positions:
            yield self.source[p]

    def subset(self, keep: Callable[[Sample], bool]) -> SampleView:
        """The samples of this view that ``keep`` accepts (each built once to decide)."""
        return SampleView(self.source, array("l", (p for p in self.positions if keep(self.source[p]))))

    def __repr__(self) -> str:
        return f"<SampleView of {len(self)} samples>"


def _pieces(f: Any, pos: int) -> Iterator[tuple[int, str]]:
    """The text of a binary file from offset ``pos`` as ``str.splitlines(keepends=True)`` pieces (what
    :func:`read_csv` feeds its reader), each with the byte offset where it starts."""
    for raw in f:
        text = raw.decode("utf-8")
        for piece in text.splitlines(keepends=True):
            yield pos, piece
            pos += len(piece.encode("utf-8"))


def iter_csv_records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """Every row of a UTF-8 CSV file (the header first; blank lines as ``[]``) as (line number, byte offset where
    the row starts, fields): the rows and line numbers of ``csv.reader`` over ``text.splitlines(keepends=True)``,
    as :func:`baselines.datasets._common.read_csv` reads, with its errors (DatasetError naming file:line)."""
    with open(path, "rb") as f:
        if f.read(3) != b"\xef\xbb\xbf":
            f.seek(0)
        feed = _pieces(f, f.tell())
        state = {"start": -1}

        def lines() -> Iterator[str]:
            for pos, piece in feed:
                if state["start"] < 0:
                    state["start"] = pos
                yield piece

        reader = csv.reader(lines())
        try:
            for row in reader:
                yield reader.line_num, state["start"], row
                state["start"] = -1
        except UnicodeDecodeError as e:
            raise DatasetError(f"{path}: not UTF-8 text ({e})") from None
        except csv.Error as e:
            raise DatasetError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None


def csv_record_at(path: Path, offset: int) -> list[str]:
    """The fields of the CSV row that starts at byte ``offset`` (from :func:`iter_csv_records`)."""
    with open(path, "rb") as f:
        f.seek(offset)
        row = next(csv.reader(piece for _, piece in _pieces(f, offset)), None)
    if row is None:
        raise DatasetError(f"{path}: no CSV row at byte {offset} (the file changed since it was loaded?)")
    return row


def file_state(path: Path) -> tuple[int, int]:
    """(size, modification time in ns) of a file: checked before a row is read back."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
