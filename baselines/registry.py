"""One small generic registry for every component kind, filled by decorators and auto-discovery.

A component registers itself once, with ``@register("attack")``; its registry name defaults to the
name of the module that defines it (convention: one baseline = one module = one registry name).
Nothing keeps a second, hand-written name map.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TypeVar

KINDS: tuple[str, ...] = ("attack", "defense", "judge", "model", "dataset")
_PACKAGES = {
    "attack": "baselines.attacks",
    "defense": "baselines.defenses",
    "judge": "baselines.judges",
    "model": "baselines.models",
    "dataset": "baselines.datasets",
}
_REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}
_discovered: set[str] = set()

T = TypeVar("T", bound=type)


class UnknownComponentError(KeyError):
    """Raised for a name that is not registered; its message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def register(kind: str, name: str | None = None):
    """Class decorator: register ``cls`` under ``kind`` with ``name`` (default: its module's last part)."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {KINDS}")

    def deco(cls: T) -> T:
        reg_name = name or cls.__module__.rsplit(".", 1)[-1]
        existing = _REGISTRY[kind].get(reg_name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"{kind} {reg_name!r} registered twice: {existing} and {cls}")
        cls.name = reg_name
        cls.kind = kind
        _REGISTRY[kind][reg_name] = cls
        return cls

    return deco


def discover(kind: str | None = None) -> None:
    """Import every module of the component packages so that their decorators run (idempotent).

    Modules must keep heavy imports (torch, transformers) inside functions, so discovery stays fast.
    """
    for k in [kind] if kind else list(KINDS):
        pkg_name = _PACKAGES[k]
        if pkg_name in _discovered:
            continue
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
        _discovered.add(pkg_name)


def get(kind: str, name: str) -> type:
    """The class registered as ``name`` under ``kind``; an unknown name lists the valid ones."""
    discover(kind)
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        valid = sorted(_REGISTRY[kind])
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownComponentError(
            f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid) or '(none)'}"
        ) from None


def names(kind: str) -> list[str]:
    """Sorted registry names of one kind."""
    discover(kind)
    return sorted(_REGISTRY[kind])


def all_components(kind: str) -> dict[str, type]:
    """A copy of the registry of one kind (name -> class)."""
    discover(kind)
    return dict(sorted(_REGISTRY[kind].items()))
