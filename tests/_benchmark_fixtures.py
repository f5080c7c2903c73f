"""Stand-in benchmark folders in the official formats: the committed text files of
``tests/fixtures/benchmarks/`` copied to a temporary folder, plus the images listed in its ``IMAGES.txt``
drawn at test time (solid-colour PNG/JPEG, colour from the path's hash), so no binary is committed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

FIX = Path(__file__).parent / "fixtures" / "benchmarks"


def image_paths() -> list[str]:
    """The image paths (relative to the fixtures folder) that IMAGES.txt lists."""
    lines = (FIX / "IMAGES.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def build(dst: Path, only: str | None = None) -> Path:
    """Copy the stand-ins (all, or the one benchmark ``only``) to ``dst`` and draw their images; returns ``dst``."""
    from PIL import Image

    src = FIX / only if only else FIX
    shutil.copytree(src, dst / only if only else dst, dirs_exist_ok=True)
    for rel in image_paths():
        if only and not rel.startswith(only + "/"):
            continue
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        rgb = tuple(hashlib.sha256(rel.encode()).digest()[:3])
        Image.new("RGB", (64, 64), rgb).save(out, format="JPEG" if rel.endswith(".jpg") else "PNG")
    return dst
