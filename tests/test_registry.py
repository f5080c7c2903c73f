"""The registry: no silent replacement of a component, and third-party components via entry points.

In-process tests work on a copy of the registry (the built-ins stay registered in it), with the plugin
state reset, and put a freshly written distribution on ``sys.path``; the last tests run the real
``mllm-safety`` command in a subprocess with such a distribution on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _organism import needs_artifact
from _plugin import SHOUT_ATTACK, make_distribution

from baselines import registry
from baselines.base import Attack

REPO = Path(__file__).resolve().parents[1]

DEMO_CLASS = '''
from baselines.base import Attack
from baselines.registry import register


@register("attack", name="twin")
class {cls}(Attack):
    """A demo attack."""

    def apply(self, samples, model):
        """Unchanged samples."""
        return list(samples)
'''


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    """A copy of the discovered registry with plugins not loaded yet; restored after the test."""
    registry.discover()
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    monkeypatch.setitem(registry._plugins, "loaded", False)
    monkeypatch.setattr(registry, "_plugin_errors", [])
    return registry


def _import_from(monkeypatch: pytest.MonkeyPatch, root: Path, module: str):
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


def test_second_class_with_same_name_is_an_error_naming_both_files(fresh, monkeypatch, tmp_path):
    (tmp_path / "reg_first.py").write_text(DEMO_CLASS.format(cls="First"))
    (tmp_path / "reg_second.py").write_text(DEMO_CLASS.format(cls="Second"))
    first = _import_from(monkeypatch, tmp_path, "reg_first")
    with pytest.raises(registry.DuplicateComponentError) as err:
        _import_from(monkeypatch, tmp_path, "reg_second")
    message = str(err.value)
    assert "attack 'twin'" in message
    assert str((tmp_path / "reg_first.py").resolve()) in message
    assert str((tmp_path / "reg_second.py").resolve()) in message
    assert registry.get("attack", "twin") is first.First  # the first one stays


def test_a_plugin_cannot_replace_a_builtin(fresh):
    builtin = registry.get("attack", "figstep")
    with pytest.raises(registry.DuplicateComponentError, match=r"figstep\.py"):

        @registry.register("attack", name="figstep")
        class Impostor(Attack):  # defined only to be refused
            """Would shadow FigStep."""

    assert registry.get("attack", "figstep") is builtin


def test_reimporting_the_same_module_is_not_an_error(fresh, monkeypatch, tmp_path):
    (tmp_path / "reg_again.py").write_text(DEMO_CLASS.format(cls="Again"))
    module = _import_from(monkeypatch, tmp_path, "reg_again")
    old = module.Again
    reloaded = importlib.reload(module)  # same file, same qualname: the same definition
    assert reloaded.Again is not old
    assert registry.get("attack", "twin") is reloaded.Again
    # the same file under a second module name (e.g. a test runner's own import) is the same class too
    spec = importlib.util.spec_from_file_location("elsewhere.reg_again", tmp_path / "reg_again.py")
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "elsewhere.reg_again", copy)
    spec.loader.exec_module(copy)
    assert registry.get("attack", "twin") is copy.Again


def test_entry_point_registers_a_third_party_attack(fresh, monkeypatch, tmp_path):
    make_distribution(
        tmp_path, "atlas-shout", {"shout": "atlas_shout.attack"}, {"atlas_shout/attack.py": SHOUT_ATTACK}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [ep.value for ep in registry.entry_points() if ep.name == "shout"] == ["atlas_shout.attack"]
    cls = registry.get("attack", "attack")  # default name: the module's last part
    assert cls.__module__ == "atlas_shout.attack"
    assert "attack" in registry.names("attack") and "figstep" in registry.names("attack")


def test_entry_point_naming_a_function_is_called(fresh, monkeypatch, tmp_path):
    source = SHOUT_ATTACK.replace('@register("attack")\n', "") + (
        "\n\ndef setup():\n    register('attack', name='shout_fn')(Shout)\n"
    )
    make_distribution(tmp_path, "atlas-fn", {"fn": "atlas_fn.plug:setup"}, {"atlas_fn/plug.py": source})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.get("attack", "shout_fn").__name__ == "Shout"


def test_broken_plugin_is_reported_by_name_and_builtins_keep_working(fresh, monkeypatch, tmp_path):
    broken = SHOUT_ATTACK + "\nraise ImportError('needs the frobnicator package')\n"
    make_distribution(
        tmp_path,
        "atlas-broken",
        {"broken": "atlas_broken.attack", "clash": "atlas_clash.figstep"},
        {
            "atlas_broken/attack.py": broken,  # registers, then fails: the registration is rolled back
            "atlas_clash/figstep.py": SHOUT_ATTACK,  # would take the name of a built-in
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(registry.PluginWarning) as caught:
        figstep = registry.get("attack", "figstep")
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "'broken' = 'atlas_broken.attack'" in messages[0] and "atlas-broken 0.1.0" in messages[0]
    assert "frobnicator" in messages[0]
    assert "'clash' = 'atlas_clash.figstep'" in messages[1] and "registered twice" in messages[1]
    assert figstep.__module__ == "baselines.attacks.figstep"
    assert "attack" not in registry.names("attack")  # the broken module's registration was undone
    with pytest.raises(registry.UnknownComponentError, match="frobnicator"):
        registry.get("attack", "shout")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO)])}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "tools.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def shout_site(tmp_path: Path) -> Path:
    make_distribution(
        tmp_path / "site",
        "atlas-shout",
        {"shout": "atlas_shout.shout"},
        {"atlas_shout/shout.py": SHOUT_ATTACK},
    )
    return tmp_path


def test_cli_lists_the_plugin_attack(shout_site):
    out = _cli(shout_site, "list", "attacks")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith("shout "))
    assert "demo plugin: the request in capitals" in line
    assert any(ln.strip().startswith("figstep ") for ln in out.stdout.splitlines())


@needs_artifact
def test_harness_runs_the_plugin_attack_on_the_organism(shout_site):
    runs = shout_site / "runs"
    args = ["run", "shout", "--limit", "4", "--max-new-tokens", "8", "--no-write-back", "--no-progress"]
    out = _cli(shout_site, *args, "--set", "suffix=?!", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "result not written (--no-write-back)" in out.stdout
    (records_file,) = runs.glob("shout__organism__bundled__*/samples.jsonl")
    records = [json.loads(line) for line in records_file.read_text().splitlines()]
    shouted = [r for r in records if r["condition"] == "shout"]
    assert len(shouted) == 4 and len(records) == 8
    assert all(r["prompt"].endswith("?!") and r["prompt"] == r["prompt"].upper() for r in shouted)
    assert all("refusal" in r["verdicts"] for r in shouted)
