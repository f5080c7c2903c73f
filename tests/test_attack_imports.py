"""No attack module imports another attack module or the model organism (shared code lives in baselines/ or in
the attacks' private ``_*.py`` helpers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ATTACKS = Path(__file__).resolve().parents[1] / "baselines" / "attacks"
MODULES = sorted(p for p in ATTACKS.glob("*.py") if p.name != "__init__.py")
ATTACK_NAMES = {p.stem for p in MODULES if not p.stem.startswith("_")}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names (anywhere in the file), relative ones resolved."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = ["baselines", "attacks"][: max(0, 3 - node.level)]
                base = ".".join([*parts, base] if base else parts)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # from baselines.attacks import figstep
    return out


def forbidden(module: str, own: str) -> bool:
    """Whether ``module`` is another attack module or (part of) the organism."""
    parts = module.split(".")
    if parts[:2] == ["baselines", "organism"]:
        return True
    return parts[:2] == ["baselines", "attacks"] and len(parts) > 2 and parts[2] in ATTACK_NAMES - {own}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_attack_imports_no_other_attack_nor_the_organism(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if forbidden(m, path.stem))
    assert not bad, f"{path.name} imports {bad}"


def test_the_checker_sees_every_import_form(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text(
        "import baselines.attacks.figstep\n"
        "from baselines.attacks import hades\n"
        "from . import mmsafetybench\n"
        "def f():\n    from baselines.organism.themes import THEMES\n"
        "from baselines.attacks._pgd import frozen\n",
        encoding="utf-8",
    )
    bad = sorted(m for m in imported_modules(src) if forbidden(m, "x"))
    assert bad == [
        "baselines.attacks.figstep",
        "baselines.attacks.hades",
        "baselines.attacks.mmsafetybench",
        "baselines.organism.themes",
        "baselines.organism.themes.THEMES",
    ]
