"""One small generic registry for every component kind, filled by decorators and auto-discovery.

A component registers itself once, with ``@register("attack")``; its registry name defaults to the
name of the module that defines it (convention: one baseline = one module = one registry name).
Nothing keeps a second, hand-written name map.

Built-in components are found by importing every public module of ``baselines.attacks``,
``baselines.defenses``, ... . Third-party packages add theirs through the entry-point group
``mllm_safety.components``: each entry point names a module (``my_lab.attacks``) or an object in one
(``my_lab.plugin:setup``); discovery imports it so that its ``@register`` decorators run, and calls it
when it is a function. Built-ins are always imported first, so a plugin can never replace one; a plugin
that fails to load is reported (a warning, and in the message of a failed lookup) with its distribution
and entry point, and the other components keep working.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import os
import pkgutil
import sys
import warnings
from typing import TypeVar

KINDS: tuple[str, ...] = ("attack", "defense", "judge", "model", "dataset")
ENTRY_POINT_GROUP = "mllm_safety.components"
_PACKAGES = {
    "attack": "baselines.attacks",
    "defense": "baselines.defenses",
    "judge": "baselines.judges",
    "model": "baselines.models",
    "dataset": "baselines.datasets",
}
_REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}
_discovered: set[str] = set()
_plugins: dict[str, bool] = {"loaded": False}
_plugin_errors: list[str] = []

T = TypeVar("T", bound=type)


class UnknownComponentError(KeyError):
    """Raised for a name that is not registered; its message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class DuplicateComponentError(ValueError):
    """Two different classes claim the same (kind, name); the message names both source files."""


class PluginError(RuntimeError):
    """A third-party entry point could not be loaded; the message names the distribution and entry point."""


class PluginWarning(UserWarning):
    """A third-party component package failed to load; the built-in components are unaffected."""


def _source(cls: type) -> str:
    """The file that defines ``cls`` (its module name when it has no file, e.g. defined in a REPL)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if path:
        return os.path.realpath(path)
    try:
        return os.path.realpath(inspect.getfile(cls))
    except (TypeError, OSError):
        return f"<module {cls.__module__}>"


def _same_definition(a: type, b: type) -> bool:
    """True when ``a`` and ``b`` are one class definition: the same object, or the same qualified name in
    the same file (a module imported again, e.g. reloaded or imported under a second module name)."""
    return a is b or (a.__qualname__ == b.__qualname__ and _source(a) == _source(b))


def register(kind: str, name: str | None = None):
    """Class decorator: register ``cls`` under ``kind`` with ``name`` (default: its module's last part).

    A second, different class under the same name is an error naming both files; the same class defined
    again (its module re-imported) replaces its earlier copy.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {KINDS}")

    def deco(cls: T) -> T:
        reg_name = name or cls.__module__.rsplit(".", 1)[-1]
        existing = _REGISTRY[kind].get(reg_name)
        if existing is not None and not _same_definition(existing, cls):
            raise DuplicateComponentError(
                f"{kind} {reg_name!r} is registered twice: {existing.__module__}.{existing.__qualname__} "
                f"({_source(existing)}) and {cls.__module__}.{cls.__qualname__} ({_source(cls)}). "
                f"Give one of them another name: @register({kind!r}, name='...')."
            )
        cls.name = reg_name
        cls.kind = kind
        _REGISTRY[kind][reg_name] = cls
        return cls

    return deco


def _import_builtins(kind: str) -> None:
    pkg_name = _PACKAGES[kind]
    if pkg_name in _discovered:
        return
    pkg = importlib.import_module(pkg_name)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg_name}.{mod.name}")
    _discovered.add(pkg_name)


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of the ``mllm_safety.components`` group (each once, sorted by name)."""
    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault((ep.name, ep.value), ep)
    return [seen[k] for k in sorted(seen)]


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "(unknown distribution)"


def load_plugin(ep: importlib.metadata.EntryPoint) -> None:
    """Import one entry point (and call it when it names a function) so that its components register.

    On any failure the registry is left as it was before, and a PluginError names the distribution and
    the entry point.
    """
    snapshot = {k: dict(v) for k, v in _REGISTRY.items()}
    try:
        obj = ep.load()
        if inspect.isfunction(obj):
            obj()
    except Exception as e:  # a plugin may fail in any way; it must not take the built-ins down
        for k, v in snapshot.items():
            _REGISTRY[k] = v
        raise PluginError(
            f"component plugin {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}, distribution "
            f"{_distribution(ep)}) failed to load: {type(e).__name__}: {e}"
        ) from e


def load_plugins() -> list[str]:
    """Load every entry point of the group once, after all built-ins; returns the errors (also warned)."""
    if not _plugins["loaded"]:
        _plugins["loaded"] = True
        for k in KINDS:
            _import_builtins(k)
        for ep in entry_points():
            try:
                load_plugin(ep)
            except PluginError as e:
                _plugin_errors.append(str(e))
                warnings.warn(str(e), PluginWarning, stacklevel=3)
    return list(_plugin_errors)


def discover(kind: str | None = None) -> None:
    """Import the built-in component modules and the third-party plugins so their decorators run (idempotent).

    Modules must keep heavy imports (torch, transformers) inside functions, so discovery stays fast.
    """
    for k in [kind] if kind else list(KINDS):
        _import_builtins(k)
    load_plugins()


def get(kind: str, name: str) -> type:
    """The class registered as ``name`` under ``kind``; an unknown name lists the valid ones."""
    discover(kind)
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        valid = sorted(_REGISTRY[kind])
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        broken = "".join(f" Note: {e}" for e in _plugin_errors)
        raise UnknownComponentError(
            f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid) or '(none)'}.{broken}"
        ) from None


def names(kind: str) -> list[str]:
    """Sorted registry names of one kind."""
    discover(kind)
    return sorted(_REGISTRY[kind])


def all_components(kind: str) -> dict[str, type]:
    """A copy of the registry of one kind (name -> class)."""
    discover(kind)
    return dict(sorted(_REGISTRY[kind].items()))
