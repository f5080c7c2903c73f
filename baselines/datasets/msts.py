"""MSTS (Multimodal Safety Test Suite, arXiv 2501.10057) from a local path.

Files (``paul-rottger/msts-multimodal-safety``): ``data/prompts/<language>_multimodal.csv`` -- English: 400 rows
(200 cases x assistance/intention) with columns ``hazard_category, hazard_subcategory, hazard_subsubcategory,
case_id, case_text, unsafe_image_id, unsafe_image_description, prompt_id, prompt_text, prompt_type``; the ten
other languages: 200 assistance rows without ``prompt_id``. Images are not in the repository (they are
downloaded from the URLs in ``data/images/unsafe_images.csv``): ``<images>/<unsafe_image_id>.png`` or ``.jpg``.
As the official preprocessing does, an image taller than 1,400 px is scaled down to 1,400 px (aspect kept).
The user turn is ``prompt_text`` with the image (``src/2_run_model.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Dataset, DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, layout_error, read_csv
from baselines.datasets._images import lazy_image
from baselines.datasets.cards import CARDS, check_count
from baselines.imaging import ImageLoadError
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

LANGUAGES = ("english", "german", "russian", "chinese", "hindi", "spanish", "italian", "french", "korean",
             "arabic", "farsi")  # fmt: skip
COLUMNS = ("hazard_category", "hazard_subcategory", "hazard_subsubcategory", "case_id", "case_text",
           "unsafe_image_id", "unsafe_image_description", "prompt_text", "prompt_type")  # fmt: skip
IMAGE_DIRS = ("data/unsafe_images", "data/images", "images")
MAX_HEIGHT = 1400
LAYOUT = """<path>/                                  (the msts-multimodal-safety repository root)
  data/prompts/english_multimodal.csv      hazard_category,hazard_subcategory,hazard_subsubcategory,case_id,
  data/prompts/<language>_multimodal.csv     case_text,unsafe_image_id,unsafe_image_description,prompt_id,
                                             prompt_text,prompt_type   (no prompt_id outside English)
  data/unsafe_images/<unsafe_image_id>.png|.jpg   downloaded with src/0_download_images.py
                                             (data/images/ or images/ also work)"""


@register("dataset")
class MSTSDataset(Dataset):
    """MSTS multimodal prompts (English 400, or one of ten translations of 200) with their images."""

    paper_id = "2025-msts-multimodal-safety"
    summary = "MSTS from a local path: data/prompts/<language>_multimodal.csv + downloaded unsafe images"
    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "rows whose image is missing",
            "official": "dropped silently by the runner",
            "ours": "skipped and listed in the result's dataset.skipped",
            "why": "a missing download must be visible",
            "effect": "none on the scored rows",
        },
        {
            "what": "downsizing filter",
            "official": "src/1_preprocess_images.py scales images taller than 1,400 px to 1,400 px",
            "ours": "the same size, Lanczos resampling at decode time",
            "why": "the official filter was not checked",
            "effect": "pixel-level differences on tall images only",
        },
    ]

    class Params(StrictParams):
        """Where the repository is, which language, which prompt types, and the count check."""

        path: str = Field(description="the repository root (holding data/prompts/ and the images)")
        language: Literal[LANGUAGES] = Field("english", description="which prompt file")  # type: ignore[valid-type]
        prompt_types: list[Literal["assistance", "intention"]] = Field(
            default_factory=lambda: ["assistance", "intention"], description="which phrasings to keep"
        )
        counts: Literal["official", "any"] = Field(
            "official", description="official: require 400 (English) / 200 rows; any: a subset or stand-in"
        )

    def load(self) -> LoadedDataset:
        """Read the CSV and the images' headers; a missing image is skipped and recorded."""
        root = Path(self.params.path).expanduser()
        path = root / "data" / "prompts" / f"{self.params.language}_multimodal.csv"
        if not path.is_file():
            raise layout_error("msts", "missing file", path, LAYOUT)
        img_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
        if img_dir is None:
            raise layout_error("msts", "missing image folder", root / IMAGE_DIRS[0], LAYOUT)
        checksum = Checksum(root)
        rows = read_csv(path, COLUMNS, "msts", checksum)
        counts = CARDS["msts"]["official_counts"]
        expected = counts["english"] if self.params.language == "english" else counts["other"]
        check_count("msts", path, len(rows), expected, "rows", self.params.counts)
        samples: list[Sample] = []
        skipped: list[dict[str, str]] = []
        seen: set[str] = set()
        for line, row in rows:
            ptype = row["prompt_type"]
            if ptype not in ("assistance", "intention"):
                raise DatasetError(
                    f"{path}:{line}: prompt_type must be assistance or intention, got {ptype!r}"
                )
            if ptype not in self.params.prompt_types:
                continue
            sid = row.get("prompt_id") or f"{row['case_id']}/{ptype}"
            if sid in seen:
                raise DatasetError(f"{path}:{line}: duplicate prompt {sid!r}")
            seen.add(sid)
            image_id = row["unsafe_image_id"].strip()
            if not image_id or "/" in image_id or ".." in image_id:
                raise DatasetError(f"{path}:{line}: bad unsafe_image_id {image_id!r}")
            found = next(
                (
                    img_dir / f"{image_id}{ext}"
                    for ext in (".png", ".jpg")
                    if (img_dir / f"{image_id}{ext}").is_file()
                ),
                None,
            )  # noqa: E501
            if found is None:
                skipped.append(
                    {
                        "id": sid,
                        "path": str(img_dir / f"{image_id}.png"),
                        "error": "image not found (.png or .jpg)",
                    }
                )
                continue
            try:
                checksum.add(found)
                image = lazy_image(found, max_height=MAX_HEIGHT)
            except ImageLoadError as e:
                skipped.append({"id": sid, "path": str(found), "error": str(e)})
                continue
            meta = {k: row[k] for k in ("case_id", "case_text", "unsafe_image_id", "unsafe_image_description",
                                        "prompt_type", "hazard_subcategory", "hazard_subsubcategory")}  # fmt: skip
            meta["language"] = self.params.language
            samples.append(Sample(id=sid, text=row["prompt_text"], images=(image,),
                                  category=row["hazard_category"], label="harmful", meta=meta))  # fmt: skip
        return LoadedDataset(
            name=self.name, samples=samples, checksum=checksum.hexdigest(), source=str(path), skipped=skipped
        )
