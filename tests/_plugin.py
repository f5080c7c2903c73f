"""Build a tiny installed-looking distribution in a folder: ``<name>.dist-info`` (METADATA and
``entry_points.txt``) plus its modules, as pip would leave them in site-packages.

``importlib.metadata`` finds it once the folder is on ``sys.path`` (or ``PYTHONPATH`` in a subprocess),
so the registry's entry-point discovery is tested for real, without installing anything.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from baselines.registry import ENTRY_POINT_GROUP

#: A third-party attack as a lab would ship it: it uses only the public base classes and the registry.
SHOUT_ATTACK = '''
"""A demo third-party attack: the request in capitals (no images)."""

from pydantic import Field

from baselines.base import Attack
from baselines.params import StrictParams
from baselines.registry import register


@register("attack")
class Shout(Attack):
    """Writes the request in capital letters, keeping ids, goal, label and category."""

    paper_id = None
    summary = "demo plugin: the request in capitals"

    class Params(StrictParams):
        """Demo parameters."""

        suffix: str = Field("!", description="text appended to the capitalised request")

    def apply(self, samples, model):
        """One capitalised copy per sample."""
        return [s.with_(text=s.text.upper() + self.params.suffix, meta={"shout": True}) for s in samples]
'''


def make_distribution(
    root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "0.1.0"
) -> Path:
    """Write distribution ``dist`` under ``root``: its modules (relative path -> source) and a dist-info
    folder whose entry points (name -> value) are in the ``mllm_safety.components`` group."""
    for rel, source in modules.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
