"""The project's own small bundled set (``baselines/datasets/data/bundled.jsonl``; see its README).

Harmful requests over the MM-SafetyBench scenarios where refusal is expected, plus benign look-alikes for
over-refusal. Text only: attacks (FigStep, MM-SafetyBench) render the images from ``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, field, layout_error
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

DEFAULT_PATH = Path(__file__).parent / "data" / "bundled.jsonl"
LAYOUT = """bundled.jsonl   one JSON object per line:
  {"id", "label": "harmful"|"benign", "category", "question", "instruction", "key_phrase", "rephrased"}"""
_META_KEYS = ("instruction", "key_phrase", "rephrased")


@register("dataset")
class BundledDataset(Dataset):
    """The bundled set: 8 scenarios x (10 harmful + 10 benign look-alike) requests."""

    summary = "the project's small bundled set: harmful requests + benign look-alikes (offline default)"

    deviations: ClassVar[list[dict[str, str]]] = []  # none: the project's own set

    class Params(StrictParams):
        """Which file and which labels."""

        path: str | None = Field(
            None, description="a JSONL file in the bundled format (None: the packaged one)"
        )
        labels: Literal["all", "harmful", "benign"] = Field("all", description="keep only these samples")

    def load(self) -> LoadedDataset:
        """Read and validate every line; a bad line raises DatasetError with file:line."""
        path = Path(self.params.path) if self.params.path else DEFAULT_PATH
        if not path.is_file():
            raise layout_error("bundled", "missing file", path, LAYOUT)
        checksum = Checksum(path.parent)
        data = checksum.add(path)
        samples: list[Sample] = []
        seen: set[str] = set()
        for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{where}: malformed JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{where}: expected a JSON object")
            sid = field(row, "id", where)
            if sid in seen:
                raise DatasetError(f"{where}: duplicate id {sid!r}")
            seen.add(sid)
            label = field(row, "label", where)
            if label not in ("harmful", "benign"):
                raise DatasetError(f"{where}: label must be 'harmful' or 'benign', got {label!r}")
            question = field(row, "question", where)
            meta = {k: field(row, k, where) for k in _META_KEYS}
            if self.params.labels in ("all", label):
                samples.append(
                    Sample(
                        id=sid,
                        text=question,
                        goal=question,
                        category=field(row, "category", where),
                        label=label,
                        meta=meta,
                    )
                )
        source = "package:baselines/datasets/data/bundled.jsonl" if not self.params.path else str(path)
        return LoadedDataset(name=self.name, samples=samples, checksum=checksum.hexdigest(), source=source)
