"""Meta-tests over every registered component: linked to its paper both ways, and documented.

Registry -> catalog: a component that names a ``paper_id`` finds that paper, and (for attacks, defenses
and judges) the paper's ``baseline`` list names the component back.
Catalog -> registry: every name in any paper's ``baseline`` list is a registered attack, defense or judge.
"""

from __future__ import annotations

import pytest

from baselines import registry
from baselines.base import describe_params
from tools.catalog.store import load_catalog

BASELINE_KINDS = ("attack", "defense", "judge")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(check=False)


def _components(kinds=registry.KINDS):
    return [(kind, name, cls) for kind in kinds for name, cls in registry.all_components(kind).items()]


@pytest.mark.parametrize("kind,name,cls", _components(), ids=lambda v: v if isinstance(v, str) else "")
def test_component_is_documented(kind, name, cls):
    assert cls.name == name and cls.kind == kind
    assert cls.summary.strip(), f"{kind} {name!r} has no one-line summary"
    assert cls.__doc__ and cls.__doc__.strip(), f"{kind} {name!r} has no docstring"
    for field in describe_params(cls.Params):
        assert field["doc"].strip(), f"{kind} {name!r}: Params field {field['name']!r} has no description"


@pytest.mark.parametrize("kind,name,cls", _components(), ids=lambda v: v if isinstance(v, str) else "")
def test_paper_id_exists_and_names_component_back(catalog, kind, name, cls):
    if cls.paper_id is None:
        pytest.skip(f"{kind} {name!r} implements no single paper")
    assert cls.paper_id in catalog.papers, f"{kind} {name!r} names unknown paper {cls.paper_id!r}"
    if kind in BASELINE_KINDS:
        assert name in catalog.papers[cls.paper_id].baseline, (
            f"catalog/papers/{cls.paper_id}.yaml does not list {name!r} under baseline"
        )


def test_every_catalog_baseline_is_registered(catalog):
    registered = {name for kind in BASELINE_KINDS for name in registry.names(kind)}
    linked = {(pid, b) for pid, paper in catalog.papers.items() for b in paper.baseline}
    assert linked, "no paper links a baseline"
    missing = sorted(f"{pid}: {b}" for pid, b in linked if b not in registered)
    assert not missing, f"papers name unregistered baselines: {missing}"


def test_attacks_and_defenses_all_link_a_paper_or_say_why():
    generic = {"safety_prompt", "guard_filter"}  # project baselines that implement no single paper
    for kind in ("attack", "defense"):
        for name, cls in registry.all_components(kind).items():
            assert cls.paper_id or name in generic, f"{kind} {name!r} has no paper_id"
